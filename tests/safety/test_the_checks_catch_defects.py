"""The safety checks themselves: each one fails on a rotation that breaks its invariant, and the
fault kinds do what they claim. (A check that cannot fail would prove nothing.)

These tests break the rotation on purpose, with monkeypatch, and expect the checks to object.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fault_injection import KILLED_AFTER, LOST, CallSite, Fault, LambdaKilled
from safety_harness import STEADY, SafetyRun, ses_refuses_new_keys
from secret_scan import OutputCapture, SecretLedger, find_leaks

from ses_smtp_rotator.local.rotation_service import STEPS
from smtp_rotation import errors
from smtp_rotation.iam_keys import UserAccessKeys
from smtp_rotation.rotation import Rotation
from smtp_rotation.send_proof import SendPathProof
from smtp_rotation.ses_smtp import SesAcceptanceWait
from smtp_rotation.settings import InstallationSecret
from smtp_rotation.telemetry import logger as function_logger


def test_deleting_the_key_awscurrent_holds_breaks_invariant_2(
    make_run: Callable[[str], SafetyRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run(STEADY)
    token = run.world.start()
    assert run.run(token, STEPS[:2]) is None  # Kion is on the new key, AWSCURRENT on the old
    old_key = run.world.current()["username"]

    def careless_test_secret(rotation: Rotation, pending: InstallationSecret) -> None:
        UserAccessKeys(pending.iam_user_name).delete(old_key)

    monkeypatch.setattr(Rotation, "test_secret", careless_test_secret)

    with pytest.raises(AssertionError, match="invariant 2 broken"):
        run.invoke("testSecret", token)
    assert run.deleted_in_use == [f"{old_key} deleted while AWSCURRENT held it"]


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


def test_a_rotation_stopped_half_way_is_not_taken_for_converged(
    make_run: Callable[[str], SafetyRun],
) -> None:
    run = make_run(STEADY)
    token = run.world.start()
    assert run.run(token, STEPS[:3]) is None

    with pytest.raises(AssertionError, match="AWSCURRENT holds"):
        run.assert_converged()


def test_a_pending_version_left_behind_is_not_taken_for_converged(
    make_run: Callable[[str], SafetyRun],
) -> None:
    run = make_run(STEADY)
    run.world.start()

    with pytest.raises(AssertionError, match="AWSPENDING left"):
        run.assert_converged()


def test_an_error_without_cause_and_fix_is_noticed(
    make_run: Callable[[str], SafetyRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run(STEADY)

    def opaque_create_secret(rotation: Rotation) -> None:
        raise KeyError("username")

    monkeypatch.setattr(Rotation, "create_secret", opaque_create_secret)

    assert run.rotate() is not None
    assert run.unclear_errors == ["createSecret: KeyError: 'username'"]


def test_a_lost_reply_is_lost_after_the_call_took_effect(
    make_run: Callable[[str], SafetyRun],
) -> None:
    run = make_run(STEADY)
    run.injector.plan = Fault(CallSite("setSecret", "kion.PATCH-app-config", 1), LOST)
    token = run.world.start()

    failure = run.run(token, STEPS[:2])

    assert failure is not None
    assert type(failure.error) is errors.KionConnectionError
    pending = run.world.version_fields(VersionId=token)["username"]
    assert run.world.kion_credential()[0] == pending  # Kion took the new key all the same


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


def test_the_secret_scan_finds_a_piece_of_a_secret_in_the_logs(
    make_run: Callable[[str], SafetyRun], outputs: OutputCapture
) -> None:
    run = make_run(STEADY)
    token = run.world.start()
    assert run.run(token, STEPS[:1]) is None
    password = run.world.version_fields(VersionId=token)["password"]
    ledger = SecretLedger(region=run.world.smtp.region)
    ledger.gather_secrets_manager()
    planted = len(outputs.texts)

    function_logger.info("careless", hint=password[3:11])  # 8 characters of the password
    found = find_leaks(ledger.secrets(), outputs.texts)
    del outputs.texts[planted:]  # keep the test's own scan clean

    assert found
    assert found[0].startswith("a piece of a SMTP password")
    assert password not in found[0]


def test_the_secret_scan_reads_the_logs_metrics_and_errors(
    make_run: Callable[[str], SafetyRun],
    outputs: OutputCapture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = make_run(STEADY)
    monkeypatch.setattr(Rotation, "finish_secret", lambda *args: {}["oops"])
    assert run.rotate() is not None

    captured = capsys.readouterr()
    outputs.add("stdout (logs and EMF metrics)", captured.out)  # the teardown scan reads it too
    logged = "\n".join(text for where, text in outputs.texts if where.startswith("log"))
    assert '"_aws"' in captured.out
    assert "SesAcceptWaitSeconds" in captured.out
    assert '"message":"SES accepts the new key"' in logged  # Powertools' JSON lines
    assert "Traceback" in logged
    assert "KeyError: 'oops'" in logged


def test_the_secret_scan_ignores_pieces_shorter_than_8() -> None:
    secrets = {"wJalrXUtnFEMI/K7MDENG": "secret access key"}

    assert find_leaks(secrets, [("log", "id wJalrXU, then more")]) == []
    assert find_leaks(secrets, [("log", "id wJalrXUt, then more")]) == [
        "a piece of a secret access key (21 chars) in log at 3"
    ]
