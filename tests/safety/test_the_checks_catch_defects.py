"""The safety checks themselves: each one fails on a rotation that breaks what it guards, in every
way the function could break it, and the fault kinds do what they claim. (A check that cannot fail
would prove nothing.)

These tests plant a defect in the rotation, with monkeypatch, and expect the check to object:
invariant 1 (Kion's credential works at Kion's host), invariant 2 (no key deleted while in use),
the end state of invariant 4, the no-op test of a fault, and the secret scan of each output channel
(invariant 3), including the scan that runs after every test, run in a child pytest.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fault_injection import KILLED_AFTER, LOST, CallSite, Fault, LambdaKilled, behaviour
from fault_scenarios import Scenario, clean_trace, run_scenario
from safety_harness import (
    ADOPT,
    REINVOKE,
    STEADY,
    InstallationState,
    SafetyRun,
    abandon,
    ses_refuses_new_keys,
)
from secret_scan import OutputCapture, SecretScan, find_leaks

from ses_smtp_rotator.functions import errors
from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.installation_secret import InstallationSecret
from ses_smtp_rotator.functions.services.iam_keys import UserAccessKeys
from ses_smtp_rotator.functions.services.kion_settings import APP_CONFIG_PATH, KionClient
from ses_smtp_rotator.functions.services.ses_smtp import SesAcceptanceWait
from ses_smtp_rotator.functions.smtp_rotation.send_proof import SendPathProof
from ses_smtp_rotator.functions.smtp_rotation.steps import Rotation
from ses_smtp_rotator.functions.telemetry import logger as function_logger
from ses_smtp_rotator.functions.telemetry import metrics, tracer
from ses_smtp_rotator.functions.watch.retired_key_deletion import delete_retired_keys
from ses_smtp_rotator.local.kion_server import KionStandIn
from ses_smtp_rotator.local.rotation_service import STEPS

Plant = Callable[[Rotation, InstallationSecret], None]
CLEAN_ROTATION = clean_trace(STEADY)  # surveyed now: a survey inside a test would unhook its faults


def before_step(monkeypatch: pytest.MonkeyPatch, step: str, plant: Plant) -> None:
    """Make the rotation do ``plant`` at the start of ``step`` (a step method of Rotation), then
    the step itself. ``plant`` gets the pending version (AWSCURRENT's, in create_secret)."""
    original = getattr(Rotation, step)

    def planted(rotation: Rotation, *pending: InstallationSecret) -> Any:
        plant(rotation, *pending or (rotation.secrets.current().secret,))
        return original(rotation, *pending)

    monkeypatch.setattr(Rotation, step, planted)


def pending_fields(run: SafetyRun, token: str) -> dict[str, Any]:
    return run.world.version_fields(VersionId=token)


# -- invariant 1: SES accepts Kion's credential at Kion's own host, after every step ----------


def test_giving_kion_a_key_ses_has_not_accepted_breaks_invariant_1(
    make_run: Callable[[str], SafetyRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run(STEADY)
    ses_refuses_new_keys(run.world, monkeypatch)
    monkeypatch.setattr(SesAcceptanceWait, "until_accepted", lambda *args: 0.0)  # no wait
    monkeypatch.setattr(SendPathProof, "send", lambda *args: None)  # and no message sent

    with pytest.raises(AssertionError, match="invariant 1 broken"):
        run.rotate()
    assert len(run.kion_refused) == 1
    assert "after setSecret" in run.kion_refused[0]
    assert "(propagating)" in run.kion_refused[0]


def test_an_ses_wait_that_gives_up_silently_breaks_invariant_1(
    make_run: Callable[[str], SafetyRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wait runs out its bound, then returns as if SES had accepted. (The send-path check
    would refuse the key next; with it switched off, the invariant check is what is left.)"""
    run = make_run(STEADY)
    run.world.edit_current(send_path_check=False)
    run.before = InstallationState.of(run.world)
    ses_refuses_new_keys(run.world, monkeypatch)
    waits = SesAcceptanceWait.until_accepted

    def gives_up_silently(wait: SesAcceptanceWait, username: str, password: str) -> float:
        try:
            return waits(wait, username, password)
        except errors.SesAuthError:
            return wait.timeout

    monkeypatch.setattr(SesAcceptanceWait, "until_accepted", gives_up_silently)

    with pytest.raises(AssertionError, match="invariant 1 broken"):
        run.rotate()
    assert "(propagating)" in run.kion_refused[0]


def test_giving_kion_a_wrong_password_breaks_invariant_1(
    make_run: Callable[[str], SafetyRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run(STEADY)
    sets = KionClient.set_smtp_credential

    def garbles(client: KionClient, username: str, password: str) -> None:
        sets(client, username, password[::-1])

    monkeypatch.setattr(KionClient, "set_smtp_credential", garbles)

    with pytest.raises(AssertionError, match="invariant 1 broken"):
        run.rotate()
    assert "(wrong_password)" in run.kion_refused[0]


def test_moving_kion_to_a_host_of_another_region_breaks_invariant_1(
    make_run: Callable[[str], SafetyRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check asks SES at the host Kion itself sends through, not at the secret's host."""
    run = make_run(STEADY)

    def moves_kion(client: KionClient, username: str, password: str) -> None:
        body = {
            "smtp_username": username,
            "smtp_password": password,
            "smtp_host": "email-smtp.eu-west-1.amazonaws.com",
        }
        client._request("PATCH", APP_CONFIG_PATH, body, redact=(password,))

    monkeypatch.setattr(KionClient, "set_smtp_credential", moves_kion)

    with pytest.raises(AssertionError, match="invariant 1 broken"):
        run.rotate()
    assert "after setSecret" in run.kion_refused[0]
    # eu-west-1's SES refuses a password derived for us-east-1 (or no SES answers there at all)
    assert re.search(r"\((wrong_password|no SES at Kion's host)\)", run.kion_refused[0])


def test_deactivating_kions_key_breaks_invariant_1(
    make_run: Callable[[str], SafetyRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run(STEADY)

    def deactivates(rotation: Rotation, pending: InstallationSecret) -> None:
        iam = UserAccessKeys(pending.iam_user_name)._client
        iam.update_access_key(
            UserName=pending.iam_user_name, AccessKeyId=pending.username, Status="Inactive"
        )

    before_step(monkeypatch, "finish_secret", deactivates)

    with pytest.raises(AssertionError, match="invariant 1 broken"):
        run.rotate()
    assert "after finishSecret" in run.kion_refused[0]
    assert "(inactive_key)" in run.kion_refused[0]


# -- invariant 2: no key deleted while AWSCURRENT, AWSPENDING, Kion or another consumer holds it --


@pytest.mark.parametrize(
    ("variant", "step", "holder"),
    [
        (STEADY, "test_secret", "AWSCURRENT"),
        (STEADY, "set_secret", "AWSPENDING"),
        (ADOPT, "set_secret", "Kion"),
        (STEADY, "create_secret", "another consumer"),
    ],
)
def test_deleting_a_key_in_use_breaks_invariant_2(
    variant: str,
    step: str,
    holder: str,
    make_run: Callable[[str], SafetyRun],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = make_run(variant)
    if holder == "another consumer":
        user = run.world.installation.iam_user_name
        run.foreign_keys.add(
            run.world.iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
        )
    held: dict[str, Callable[[InstallationSecret], str]] = {
        "AWSCURRENT": lambda pending: run.world.current()["username"],
        "AWSPENDING": lambda pending: pending.username,
        "Kion": lambda pending: run.world.kion_credential()[0],
        "another consumer": lambda pending: next(iter(run.foreign_keys)),
    }
    victims: list[str] = []

    def deletes(rotation: Rotation, pending: InstallationSecret) -> None:
        victims.append(held[holder](pending))
        UserAccessKeys(pending.iam_user_name).delete(victims[-1])

    before_step(monkeypatch, step, deletes)

    with pytest.raises(AssertionError, match="invariant 2 broken"):
        run.rotate()
    assert run.deleted_in_use[0].startswith(f"{victims[0]} deleted while")
    assert holder in run.deleted_in_use[0]


# -- invariant 4: the end state ------------------------------------------------------------


def test_a_rotation_stopped_half_way_is_not_taken_for_converged(
    make_run: Callable[[str], SafetyRun],
) -> None:
    run = make_run(STEADY)
    token = run.world.start()
    assert run.run(token, STEPS[:3]) is None
    abandon(run.world)  # Kion on the new key, AWSCURRENT on the old, nothing pending

    with pytest.raises(AssertionError, match="AWSCURRENT holds"):
        run.assert_converged()


def test_a_pending_version_left_behind_is_not_taken_for_converged(
    make_run: Callable[[str], SafetyRun],
) -> None:
    run = make_run(STEADY)
    run.world.start()

    with pytest.raises(AssertionError, match="AWSPENDING left"):
        run.assert_converged()


def test_never_retiring_the_replaced_key_is_not_taken_for_converged(
    make_run: Callable[[str], SafetyRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run(STEADY)
    monkeypatch.setattr(Rotation, "_retire_replaced_key", lambda *args: None)

    assert run.rotate() is None
    with pytest.raises(AssertionError, match=r"replaced key .* is Active"):
        run.assert_converged()


@pytest.mark.parametrize("variant", [STEADY, ADOPT])
def test_deleting_the_replaced_key_outright_is_counted_as_before_its_window(
    variant: str, make_run: Callable[[str], SafetyRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What finishSecret did before retirement: delete the key it replaced at once."""
    run = make_run(variant)
    replaced = run.before.replaced_key if run.before else ""

    def deletes_at_once(rotation: Rotation, replaced_version: Any, pending: Any, *_: Any) -> None:
        UserAccessKeys(pending.iam_user_name).delete(replaced)

    monkeypatch.setattr(Rotation, "_retire_replaced_key", deletes_at_once)

    with pytest.raises(AssertionError, match="deleted early"):
        run.rotate()
    assert run.deleted_before_window == [f"{replaced} deleted before its window"]
    assert bool(run.adopted_deleted_outright) == (variant == ADOPT)


def test_a_watch_that_deletes_inside_the_window_is_counted(
    make_run: Callable[[str], SafetyRun],
) -> None:
    run = make_run(STEADY)
    assert run.rotate() is None
    [retired] = run.world.retired_keys()

    with run.injector.invoking("watch"):  # the watch's clock a week ahead of everyone else's
        delete_retired_keys(
            run.world.secret_id,
            RotationConfig.from_environment(),
            now=datetime.now(UTC) + timedelta(days=8),
        )

    assert run.deleted_before_window == [f"{retired} deleted before its window"]


def test_a_rotation_that_keeps_the_key_of_before_is_not_taken_for_converged(
    make_run: Callable[[str], SafetyRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every step succeeds, every label moves, and the credential is the one of before."""
    run = make_run(STEADY)
    monkeypatch.setattr(
        Rotation, "_new_credential", lambda rotation, current: (current.username, current.password)
    )

    assert run.rotate() is None
    with pytest.raises(AssertionError, match=r"Kion still uses .*, the key of before"):
        run.assert_converged()


def test_kion_refused_at_its_host_at_the_end_is_not_taken_for_converged(
    make_run: Callable[[str], SafetyRun],
) -> None:
    run = make_run(STEADY)
    assert run.rotate() is None
    run.world.kion.app_config["smtp_host"] = "email-smtp.ap-south-1.amazonaws.com"

    with pytest.raises(
        AssertionError, match=r"SES refuses Kion's credential \(no SES at Kion's host\)"
    ):
        run.assert_rotated("after the run")


def test_a_key_of_another_consumer_gone_at_the_end_is_not_taken_for_converged(
    make_run: Callable[[str], SafetyRun],
) -> None:
    run = make_run(STEADY)
    user = run.world.installation.iam_user_name
    other = run.world.iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    run.foreign_keys.add(other)
    run.world.iam.delete_access_key(UserName=user, AccessKeyId=other)

    with pytest.raises(AssertionError, match="keys of other consumers deleted"):
        run.assert_unchanged()


def test_a_failed_rotation_that_changed_something_is_not_a_clean_failure(
    make_run: Callable[[str], SafetyRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run(STEADY)

    def leaves_a_key(rotation: Rotation) -> None:
        UserAccessKeys(rotation.secrets.current().secret.iam_user_name).create()
        raise errors.KionStateError("Planted.", "Nothing.")

    monkeypatch.setattr(Rotation, "create_secret", leaves_a_key)
    failure = run.rotate()
    assert failure is not None
    abandon(run.world)

    with pytest.raises(AssertionError, match="the installation changed"):
        run.assert_unchanged()


def test_a_failed_rotation_that_changed_nothing_is_a_clean_failure(
    make_run: Callable[[str], SafetyRun],
) -> None:
    run = make_run(STEADY)
    run.injector.deny("iam.CreateAccessKey")
    failure = run.rotate()
    assert failure is not None
    abandon(run.world)

    run.assert_unchanged()


def test_an_error_without_cause_and_fix_is_noticed(
    make_run: Callable[[str], SafetyRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run(STEADY)

    def opaque_create_secret(rotation: Rotation) -> None:
        raise KeyError("username")

    monkeypatch.setattr(Rotation, "create_secret", opaque_create_secret)

    assert run.rotate() is not None
    assert run.unclear_errors == ["createSecret: KeyError: 'username'"]


# -- the faults themselves -------------------------------------------------------------------


def test_a_fault_that_changes_nothing_is_refused_as_a_scenario(
    make_run: Callable[[str], SafetyRun], record_property: Callable[[str, object], None]
) -> None:
    """A 535 at a login SES refuses anyway (the new key still propagates) changes nothing; the
    scenario generator leaves it out, and the check says so should one be planned."""
    run = make_run(STEADY)
    refused_anyway = Fault(CallSite("setSecret", "smtp.auth", 1), "smtp-535")
    run.injector.plan = refused_anyway
    properties: dict[str, object] = {}

    with pytest.raises(AssertionError, match="changed nothing the function did"):
        run_scenario(
            run,
            Scenario(STEADY, refused_anyway, REINVOKE),
            clean_trace(STEADY),
            properties.setdefault,
        )
    assert properties["no_op"] == 1


def test_a_lost_reply_after_a_refused_login_changes_what_the_function_sees(
    make_run: Callable[[str], SafetyRun],
) -> None:
    """A fault "after the call" applies whatever the call answered: here SES had refused the
    login, and the function sees a lost connection instead, so the scenario is not a no-op."""
    run = make_run(STEADY)
    run.injector.plan = Fault(CallSite("setSecret", "smtp.auth", 1), LOST)

    run.finish(run.rotate(), REINVOKE)

    assert "setSecret:smtp.auth#1=SMTPServerDisconnected" in behaviour(run.injector.trace)
    assert behaviour(run.injector.trace) != behaviour(CLEAN_ROTATION)
    run.assert_converged()


def test_a_lost_reply_is_lost_after_the_call_took_effect(
    make_run: Callable[[str], SafetyRun],
) -> None:
    run = make_run(STEADY)
    run.injector.plan = Fault(CallSite("setSecret", "kion.PATCH-app-config", 1), LOST)
    token = run.world.start()

    failure = run.run(token, STEPS[:2])

    assert failure is not None
    assert type(failure.error) is errors.KionConnectionError
    assert run.world.kion_credential()[0] == pending_fields(run, token)["username"]


def test_a_kill_runs_no_clean_up(
    make_run: Callable[[str], SafetyRun], caplog: pytest.LogCaptureFixture
) -> None:
    run = make_run(STEADY)
    keys_before = run.world.access_key_ids()
    run.injector.plan = Fault(CallSite("createSecret", "iam.CreateAccessKey", 1), KILLED_AFTER)
    token = run.world.start()

    failure = run.run(token)

    assert failure is not None
    assert isinstance(failure.error, LambdaKilled)
    assert len(run.world.access_key_ids() - keys_before) == 1  # the key was made
    assert run.world.stages()[token] == ["AWSPENDING"]  # but never stored
    assert not [record for record in caplog.records if record.levelname == "ERROR"]


# -- invariant 3: every output channel, every encoding, every secret --------------------------


@pytest.fixture
def planted_leak(secret_scan: SecretScan) -> Callable[[], list[str]]:
    """``found()``: the leaks the scan sees now. What the test planted is then forgotten, so the
    scan after the test passes."""
    outputs, mark = secret_scan.outputs, len(secret_scan.outputs.texts)

    def found() -> list[str]:
        leaks = secret_scan.leaks()
        del outputs.texts[mark:]
        return leaks

    return found


def rotated_password(run: SafetyRun, monkeypatch: pytest.MonkeyPatch, plant: Plant) -> str:
    """Rotate with ``plant`` run at the start of setSecret; return the new SMTP password."""
    before_step(monkeypatch, "set_secret", plant)
    token = run.world.start()
    run.run(token)
    return str(pending_fields(run, token)["password"])


CHANNELS: dict[str, Plant] = {
    "log message": lambda rotation, pending: function_logger.info(f"using {pending.password}"),
    "log field": lambda rotation, pending: function_logger.info("using", hint=pending.password),
    "log record at DEBUG": lambda rotation, pending: function_logger.debug(pending.password),
    "EMF metric metadata": lambda rotation, pending: metrics.add_metadata("hint", pending.password),
    "X-Ray annotation": lambda rotation, pending: tracer().put_annotation("hint", pending.password),
    "X-Ray metadata": lambda rotation, pending: tracer().put_metadata("hint", pending.password),
    "print to stdout": lambda rotation, pending: print(pending.password),
    "raw write to stderr": lambda rotation, pending: os.write(2, pending.password.encode()),
    "base64 in a log": lambda rotation, pending: function_logger.info(
        base64.b64encode(f"\0{pending.username}\0{pending.password}".encode()).decode()
    ),
    "URL-encoded in a log": lambda rotation, pending: function_logger.info(
        f"https://kion.invalid/?p={quote(pending.password, safe='')}"
    ),
}
WHERE = {
    "log message": "log",
    "log field": "log",
    "log record at DEBUG": "log",
    "EMF metric metadata": "stdout",
    "X-Ray annotation": "X-Ray segment",
    "X-Ray metadata": "X-Ray segment",
    "print to stdout": "stdout",
    "raw write to stderr": "stderr",
    "base64 in a log": "log",
    "URL-encoded in a log": "log",
}


@pytest.mark.parametrize("channel", CHANNELS)
def test_the_secret_scan_finds_the_password_in_each_channel(
    channel: str,
    make_run: Callable[[str], SafetyRun],
    monkeypatch: pytest.MonkeyPatch,
    planted_leak: Callable[[], list[str]],
) -> None:
    run = make_run(STEADY)
    password = rotated_password(run, monkeypatch, CHANNELS[channel])

    found = planted_leak()

    assert found, f"the scan missed the password in {channel}"
    assert all("SMTP password" in leak for leak in found), found
    assert any(f" in {WHERE[channel]}" in leak for leak in found), found
    assert not any(password in leak for leak in found)  # the report never quotes the secret


def test_the_secret_scan_finds_the_password_in_an_error_and_its_traceback(
    make_run: Callable[[str], SafetyRun],
    outputs: OutputCapture,
    monkeypatch: pytest.MonkeyPatch,
    planted_leak: Callable[[], list[str]],
) -> None:
    """Kion's password written into an error message, and into the error it was raised from."""
    run = make_run(STEADY)

    def careless_error(rotation: Rotation, pending: InstallationSecret) -> None:
        try:
            raise ValueError(f"bad reply for {pending.password}")
        except ValueError as error:
            raise errors.KionStateError(f"Kion holds {pending.password}.", "None.") from error

    password = rotated_password(run, monkeypatch, careless_error)
    for failure in run.failures:  # what make_run hands to the scan after the test, now
        outputs.add_error(f"{failure.step} error", failure.error)
    run.failures.clear()

    found = planted_leak()

    assert any(" in setSecret error (message)" in leak for leak in found), found
    assert any(" in setSecret error (traceback)" in leak for leak in found), found
    assert any(" in log" in leak for leak in found), found  # the function logs its errors
    assert not any(password in leak for leak in found)


def test_the_secret_scan_finds_pieces_of_every_kion_api_key_ever_issued(
    make_run: Callable[[str], SafetyRun], kion: KionStandIn, planted_leak: Callable[[], list[str]]
) -> None:
    """Eight characters of a Kion App API key, even of one revoked since."""
    make_run(STEADY)
    key_id, key = kion.create_api_key()
    kion.revoke_api_key(key_id)

    function_logger.info("key", hint=key[5:13])

    found = planted_leak()
    assert found
    assert all(leak.startswith("a piece of a Kion API key (32 chars) in log") for leak in found)


def test_the_secret_scan_finds_a_secret_access_key_made_and_deleted_in_the_test(
    make_run: Callable[[str], SafetyRun], planted_leak: Callable[[], list[str]]
) -> None:
    run = make_run(STEADY)
    user = run.world.installation.iam_user_name
    made = run.world.iam.create_access_key(UserName=user)["AccessKey"]
    run.world.iam.delete_access_key(UserName=user, AccessKeyId=made["AccessKeyId"])

    print(made["SecretAccessKey"][-9:])

    found = planted_leak()
    assert len(found) == 1
    assert found[0].startswith("a piece of a secret access key (40 chars) in stdout")


def test_the_secret_scan_reads_the_logs_metrics_traces_and_errors(
    make_run: Callable[[str], SafetyRun],
    outputs: OutputCapture,
    secret_scan: SecretScan,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = make_run(STEADY)
    monkeypatch.setattr(Rotation, "finish_secret", lambda *args: {}["oops"])
    assert run.rotate() is not None

    assert secret_scan.leaks() == []
    texts = {where: [] for where, _ in outputs.texts}  # type: dict[str, list[str]]
    for where, text in outputs.texts:
        texts[where].append(text)
    stdout = "\n".join(texts["stdout (logs and EMF metrics)"])
    logged = "\n".join(texts["log (Powertools JSON)"] + texts["log record"])
    traced = [json.loads(document) for document in texts["X-Ray segment"]]
    assert '"_aws"' in stdout
    assert "SesAcceptWaitSeconds" in stdout
    assert '"message":"SES accepts the new key"' in logged  # Powertools' JSON lines
    assert "Traceback" in logged
    assert "KeyError: 'oops'" in logged
    assert {"step": "finishSecret"} in [entity.get("annotations") for entity in traced]
    assert any("KeyError" in json.dumps(entity.get("cause", {})) for entity in traced)


def test_the_secret_scan_ignores_pieces_shorter_than_8() -> None:
    secrets = {"wJalrXUtnFEMI/K7MDENG": "secret access key"}

    assert find_leaks(secrets, [("log", "id wJalrXU, then more")]) == []
    assert find_leaks(secrets, [("log", "id wJalrXUt, then more")]) == [
        "a piece of a secret access key (21 chars) in log at 3"
    ]


PLANTED = "SAFETY_SUITE_PLANTED_LEAKS"  # the channels test_planted_leak writes to, comma-separated
LEAKY_CHANNELS = ("raw write to stderr", "X-Ray metadata", "base64 in a log")


@pytest.mark.skipif(PLANTED not in os.environ, reason="run by the test below, in a child pytest")
@pytest.mark.parametrize("channel", os.environ.get(PLANTED, "").split(","))
def test_planted_leak(
    channel: str, make_run: Callable[[str], SafetyRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes the new SMTP password to ``channel``, and passes: only the scan after it can
    fail it."""
    run = make_run(STEADY)
    rotated_password(run, monkeypatch, CHANNELS[channel])


def test_the_scan_after_every_test_fails_a_test_that_leaks() -> None:
    here = Path(__file__)
    command = [sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider"]
    child = subprocess.run(
        [*command, "-q", "-rE", f"{here}::test_planted_leak"],
        env={**os.environ, PLANTED: ",".join(LEAKY_CHANNELS)},
        cwd=here.parents[2],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert child.returncode == 1, child.stdout[-3000:]
    assert f"{len(LEAKY_CHANNELS)} passed, {len(LEAKY_CHANNELS)} errors" in child.stdout
    for channel, where in [(channel, WHERE[channel]) for channel in LEAKY_CHANNELS]:
        assert f"ERROR at teardown of test_planted_leak[{channel}]" in child.stdout
        assert f"in {where}" in child.stdout
    assert child.stdout.count("invariant 3 broken: ['a piece of a SMTP password") >= len(
        LEAKY_CHANNELS
    )
