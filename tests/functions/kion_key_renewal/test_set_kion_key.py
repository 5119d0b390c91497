"""``ses-smtp-rotator set-kion-key SECRET``: the fix for an expired or deleted Kion API key."""

from __future__ import annotations

import io
import sys
import time

import pytest
from kion_key_world import KeyRenewalWorld

from ses_smtp_rotator.cli import main as cli
from ses_smtp_rotator.cli.commands.set_kion_key import identify_key
from ses_smtp_rotator.cli.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from ses_smtp_rotator.functions.services.kion_keys import KionKeyClient as KeyClient
from ses_smtp_rotator.local.kion_server import KionStandIn


def set_kion_key(
    renewal: KeyRenewalWorld,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    typed: str,
    *args: str,
) -> tuple[int, str]:
    """Run the command with ``typed`` piped to it; returns its exit code and all its output."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(typed + "\n"))
    code = cli.main(["set-kion-key", renewal.smtp.secret_id, *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_a_key_kion_accepts_is_stored_with_its_id_and_installation(
    renewal: KeyRenewalWorld,
    kion: KionStandIn,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    new = kion.api_keys.issue("made by hand in Kion")
    code, output = set_kion_key(renewal, monkeypatch, capsys, new.key)
    assert code == EXIT_OK, output
    stored = renewal.current()
    assert stored == {
        "api_key": new.key,
        "api_key_id": new.id,
        "installation_secret_id": renewal.smtp.secret_id,
    }
    assert f"Kion id {new.id}" in output
    assert new.key not in output
    renewal.renew()  # the recorded id lets the first renewal delete it
    assert renewal.record(new.id) is None
    assert renewal.current_works()


def test_the_key_can_be_typed_at_a_hidden_prompt(
    renewal: KeyRenewalWorld,
    kion: KionStandIn,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    new = kion.api_keys.issue("typed")
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    prompts: list[str] = []
    monkeypatch.setattr("getpass.getpass", lambda prompt: prompts.append(prompt) or new.key)
    assert cli.main(["set-kion-key", renewal.smtp.secret_id, "--key-id", str(new.id)]) == EXIT_OK
    assert prompts == ["Kion App API key (hidden): "]
    assert renewal.current()["api_key_id"] == new.id
    assert new.key not in "".join(capsys.readouterr())


def test_a_key_kion_refuses_is_not_stored(
    renewal: KeyRenewalWorld,
    kion: KionStandIn,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = renewal.current()
    expired = kion.api_keys.issue("expired")
    expired.created_at -= 31 * 86_400
    code, output = set_kion_key(renewal, monkeypatch, capsys, expired.key)
    assert code == EXIT_FAILED
    assert "refuses this key (401)" in output
    assert "Fix: create a new App API key" in output
    assert renewal.current() == before
    assert expired.key not in output


def test_an_id_kion_does_not_have_is_refused(
    renewal: KeyRenewalWorld,
    kion: KionStandIn,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = renewal.current()
    code, output = set_kion_key(renewal, monkeypatch, capsys, kion.api_key, "--key-id", "999")
    assert code == EXIT_FAILED
    assert "no App API key with id 999" in output
    assert renewal.current() == before


def test_no_key_on_standard_input_is_a_usage_error(
    renewal: KeyRenewalWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = renewal.current()
    code, output = set_kion_key(renewal, monkeypatch, capsys, "")
    assert code == EXIT_USAGE
    assert "no Kion App API key" in output
    assert renewal.current() == before


def test_an_unfinished_renewal_is_cancelled_and_its_key_cleaned_up_by_the_next(
    renewal: KeyRenewalWorld,
    kion: KionStandIn,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = renewal.start()
    renewal.step("createSecret", token)
    [stuck] = renewal.renewal_keys()
    new = kion.api_keys.issue("the operator's")
    code, output = set_kion_key(renewal, monkeypatch, capsys, new.key)
    assert code == EXIT_OK, output
    assert f"Cancelled the unfinished renewal of the old key (version {token})" in output
    assert "AWSPENDING" not in renewal.stages()[token]
    renewal.renew()
    assert renewal.record(stuck.id) is None
    assert renewal.current_works()


def test_a_key_is_not_told_apart_when_another_is_used_at_the_same_moment(
    kion: KionStandIn,
) -> None:
    mine, theirs = kion.api_keys.issue("mine"), kion.api_keys.issue("a colleague's")
    client, colleague = (
        KeyClient(kion.url, key, api_key_secret_id="kion/api-key", ca_pem=kion.ca_pem, retries=0)
        for key in (mine.key, theirs.key)
    )

    def meanwhile_the_colleague_works(seconds: float) -> None:
        time.sleep(seconds)
        colleague.app_config()

    found = identify_key(client)
    assert found is not None
    assert found.id == mine.id
    assert identify_key(client, sleep=meanwhile_the_colleague_works) is None


def test_a_never_rotated_installation_is_told_how_to_start_its_first_rotation(
    make_world,
    kion: KionStandIn,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    world = make_world(adopt=True)  # just deployed: the secret holds no credential yet
    monkeypatch.setattr(sys, "stdin", io.StringIO(kion.api_key + "\n"))

    code = cli.main(["set-kion-key", world.secret_id])  # piped: nobody to ask

    output = capsys.readouterr().out
    assert code == EXIT_OK
    assert f"Start the first rotation with: ses-smtp-rotator rotate {world.secret_id} --wait" in (
        output
    )
    assert all("AWSPENDING" not in labels for labels in world.stages().values())


def test_at_a_terminal_it_asks_before_starting_the_first_rotation(
    make_world,
    kion: KionStandIn,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    world = make_world(adopt=True)
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt: kion.api_key)
    asked: list[str] = []
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or "n")

    code = cli.main(["set-kion-key", world.secret_id])

    assert code == EXIT_OK
    assert asked == ["The installation has never rotated. Start its first rotation now? [Y/n] "]
    assert "Start the first rotation with:" in capsys.readouterr().out
    assert all("AWSPENDING" not in labels for labels in world.stages().values())


def test_renew_set_kion_key_renew_again(
    renewal: KeyRenewalWorld,
    kion: KionStandIn,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    renewal.renew()
    new = kion.api_keys.issue("made by hand in Kion")

    code, output = set_kion_key(renewal, monkeypatch, capsys, new.key)

    assert code == EXIT_OK, output
    assert "Cancelled" not in output  # the finished renewal left nothing unfinished
    assert not any("AWSPENDING" in stages for stages in renewal.stages().values())
    assert [s for s in renewal.stages().values() if "AWSCURRENT" in s] == [["AWSCURRENT"]]
    renewal.renew()  # accepted: no AWSPENDING apart from AWSCURRENT
    assert renewal.record(new.id) is None
    assert renewal.current_works()


def test_set_kion_key_takes_off_the_awspending_a_finished_renewal_left_on_awscurrent(
    renewal: KeyRenewalWorld,
    kion: KionStandIn,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = renewal.renew()
    # Secrets Manager may leave it there; an earlier release's finishSecret did not take it off.
    renewal.secretsmanager.update_secret_version_stage(
        SecretId=renewal.secret_id, VersionStage="AWSPENDING", MoveToVersionId=token
    )
    new = kion.api_keys.issue("made by hand in Kion")

    code, output = set_kion_key(renewal, monkeypatch, capsys, new.key)

    assert code == EXIT_OK, output
    assert "Cancelled" not in output
    assert renewal.stages()[token] == ["AWSPREVIOUS"]
    renewal.renew()
    assert renewal.current_works()
