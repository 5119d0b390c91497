"""What the steps report to operators besides their effects: the log lines that name each key
moved or deleted, the success metric, and the exact words of the guards' errors. Dashboards,
alarms and log searches rely on these names."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from ses_smtp_rotator.functions.errors import KionStateError, RotationStateError
from ses_smtp_rotator.functions.installation_metrics import installation_name
from ses_smtp_rotator.functions.services import aws_clients as aws
from ses_smtp_rotator.functions.services.smtp_password import derive_smtp_password
from ses_smtp_rotator.local.rotation_service import RotationStepError


def records(function_logs: Any, message: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in function_logs.getvalue().splitlines() if line]
    return [line for line in lines if line.get("message") == message]


def emitted_metrics(output: str) -> dict[str, tuple[str, float]]:
    """Every metric of the embedded metric format blobs in ``output``: name -> (unit, value)."""
    found: dict[str, tuple[str, float]] = {}
    for line in output.splitlines():
        if '"_aws"' not in line:
            continue
        blob = json.loads(line)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                value = value[0] if isinstance(value, list) else value
                found[metric["Name"]] = (metric["Unit"], value)
    return found


def test_a_rotation_logs_the_keys_it_moved_and_deactivated_and_counts_its_success(
    world, function_logs, capsys
):
    replaced = world.current()["username"]

    world.rotate()

    new_key = world.current()["username"]
    [moved] = records(function_logs, "AWSCURRENT moved to the new version")
    assert moved["access_key_id"] == new_key
    [deactivated] = records(function_logs, "Deactivated the replaced access key")
    assert deactivated["access_key_id"] == replaced
    retired = world.retired_keys()[replaced]
    assert deactivated["deletion_after"] == (
        f"{retired.deactivated_at + timedelta(days=7):%Y-%m-%d %H:%M} UTC"
    )
    assert deactivated["last_used"] == retired.describe_last_use()
    assert not records(function_logs, "Deleted the retired access key")
    assert emitted_metrics(capsys.readouterr().out)["RotationSucceeded"] == ("Count", 1)


def test_the_configuration_check_before_the_first_credential_says_so(make_world, function_logs):
    world = make_world(adopt=True)  # the secret holds settings and no credential yet
    token = world.start()
    world.secretsmanager.put_secret_value(
        SecretId=world.secret_id,
        ClientRequestToken=token,
        SecretString=json.dumps(world.current()),
        VersionStages=["AWSPENDING"],
    )

    world.step("testSecret", token)  # what Secrets Manager does when rotation is attached

    assert records(
        function_logs, "Configuration check on a secret with no credential yet; settings valid"
    )


def test_test_secret_logs_in_once_with_a_settled_key(world):
    token = world.start()
    world.run_steps(token, ("createSecret", "setSecret"))
    new_key = world.kion_credential()[0]
    logins_before = len([a for a in world.smtp.auth_attempts if a.access_key_id == new_key])

    world.step("testSecret", token)

    logins = [a for a in world.smtp.auth_attempts if a.access_key_id == new_key]
    assert len(logins) - logins_before == 1


def test_finish_secret_judges_kion_by_its_username_alone(world):
    """testSecret proved Kion's password; Kion showing another password in SES form for the new
    key afterwards does not stop finishSecret (which asks only whom Kion sends as)."""
    token = world.start()
    world.run_steps(token, ("createSecret", "setSecret", "testSecret"))
    world.kion.app_config["smtp_password"] = derive_smtp_password(
        "another-secret-access-key-of-forty-chars0", "us-east-1"
    )

    world.step("finishSecret", token)

    assert world.current_version_id() == token


def test_settings_changed_before_finish_secret_stop_it(world):
    token = world.start()
    world.run_steps(token, ("createSecret", "setSecret", "testSecret"))
    before = world.current_version_id()
    world.edit_current(send_path_check=not world.current().get("send_path_check", True))

    with pytest.raises(RotationStepError) as raised:
        world.step("finishSecret", token)

    error = raised.value.error
    assert isinstance(error, RotationStateError)
    assert error.cause == (
        f"The secret's settings were changed after this rotation stored its pending version "
        f"{token} (send_path_check); that version still holds the old ones."
    )
    assert error.fix == (
        "Abandon this rotation and start a new one, which uses the changed settings: aws "
        f"secretsmanager update-secret-version-stage --secret-id {world.secret_id} "
        f"--version-stage AWSPENDING --remove-from-version-id {token}, then rotate again."
    )
    assert world.current_version_id() != token
    assert world.current_version_id() != before  # edit_current stored a new AWSCURRENT


def test_kion_on_another_username_names_the_fix(world):
    token = world.start()
    world.run_steps(token, ("createSecret", "setSecret"))
    world.kion.app_config["smtp_username"] = "AKIASOMEONEELSE00000"

    with pytest.raises(RotationStepError) as raised:
        world.step("testSecret", token)

    error = raised.value.error
    assert isinstance(error, KionStateError)
    new_key = world.version_fields(VersionId=token)["username"]
    assert error.cause == (
        f"Kion's SMTP username is AKIASOMEONEELSE00000, not the new access key {new_key}."
    )
    assert error.fix == (
        "setSecret did not reach Kion, or someone changed Kion's SMTP settings during the "
        "rotation; Secrets Manager retries the rotation, or start a new one."
    )


def test_kion_with_another_password_names_the_fix(world):
    token = world.start()
    world.run_steps(token, ("createSecret", "setSecret"))
    new_key = world.version_fields(VersionId=token)["username"]
    world.kion.app_config["smtp_password"] = derive_smtp_password(
        "another-secret-access-key-of-forty-chars0", "us-east-1"
    )

    with pytest.raises(RotationStepError) as raised:
        world.step("testSecret", token)

    error = raised.value.error
    assert isinstance(error, KionStateError)
    assert error.cause == f"Kion's SMTP password does not belong to access key {new_key}."
    assert error.fix == "Someone changed Kion's SMTP password during the rotation; rotate again."


def test_every_step_logs_that_it_finished_and_an_already_current_version_says_so(
    world, function_logs
):
    token = world.rotate()
    assert len(records(function_logs, "Step finished")) == 4

    world.step("setSecret", token)

    [nothing] = records(function_logs, "This version is already AWSCURRENT; nothing to do")
    assert nothing["step"] == "setSecret"
    assert len(records(function_logs, "Step finished")) == 5


def test_a_failed_step_logs_its_cause_and_fix_and_counts_a_failure(world, function_logs, capsys):
    token = world.start()
    world.run_steps(token, ("createSecret", "setSecret"))
    world.kion.app_config["smtp_username"] = "AKIASOMEONEELSE00000"
    capsys.readouterr()

    with pytest.raises(RotationStepError) as raised:
        world.step("testSecret", token)

    error = raised.value.error
    [logged] = [line for line in records(function_logs, error.cause) if line["level"] == "ERROR"]
    assert logged["error"] == "KionStateError"
    assert logged["fix"] == error.fix
    assert logged["step"] == "testSecret"
    assert emitted_metrics(capsys.readouterr().out)["RotationStepFailed"] == ("Count", 1)


def test_an_unexpected_failure_is_logged_with_its_type_and_counted(world, function_logs, capsys):
    token = world.start()
    world.run_steps(token, ("createSecret", "setSecret", "testSecret"))
    events = aws.client("secretsmanager").meta.events

    def stopped(**_: Any) -> None:
        raise TimeoutError("the function was stopped")

    events.register("before-call.secretsmanager.UpdateSecretVersionStage", stopped, "stop")
    capsys.readouterr()
    try:
        with pytest.raises(RotationStepError):
            world.step("finishSecret", token)
    finally:
        events.unregister("before-call.secretsmanager.UpdateSecretVersionStage", unique_id="stop")

    [logged] = records(function_logs, "Unexpected failure")
    assert logged["level"] == "ERROR"
    assert logged["error"] == "TimeoutError"
    assert "TimeoutError" in logged["exception"]
    assert emitted_metrics(capsys.readouterr().out)["RotationStepFailed"] == ("Count", 1)


def test_set_secret_reports_the_wait_for_ses_per_installation(
    world, function_logs, capsys, monkeypatch
):
    world.smtp.propagation_delay = 1.0
    token = world.start()
    world.step("createSecret", token)
    world.wait_on_virtual_time(token, monkeypatch)  # refused at 0; accepted from 1
    capsys.readouterr()

    world.step("setSecret", token)

    new_key = world.kion_credential()[0]
    [accepted] = records(function_logs, "SES accepts the new key")
    assert accepted["access_key_id"] == new_key
    assert accepted["logins"] == 4  # one refused, then three in a row over the span
    for message in ("SES took a message from Kion's sender", "Kion now sends with the new key"):
        [line] = records(function_logs, message)
        assert line["access_key_id"] == new_key
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    [wait] = [blob for blob in blobs if "SesAcceptWaitSeconds" in blob]
    assert wait["installation"] == installation_name(world.secret_id)
    assert wait["SesAcceptWaitSeconds"] == [pytest.approx(1.05)]  # 1 s, then 0.05 of span


def test_ses_offering_plain_and_login_is_logged_in_to_with_plain(world):
    """One exchange per login, and one attempt only: no second mechanism after a refusal."""
    world.rotate()

    new_key = world.current()["username"]
    mechanisms = [a.mechanism for a in world.smtp.auth_attempts if a.access_key_id == new_key]
    assert mechanisms
    assert set(mechanisms) == {"PLAIN"}


def test_a_relay_without_auth_plain_is_logged_in_to_with_login(world):
    world.smtp.excluded_mechanisms = ("PLAIN",)

    world.rotate()

    new_key = world.current()["username"]
    mechanisms = {a.mechanism for a in world.smtp.auth_attempts if a.access_key_id == new_key}
    assert mechanisms == {"LOGIN"}
    assert world.converged()


def test_create_secret_hands_the_rotation_token_back_with_the_new_version(world):
    """Secrets Manager checks the RotationToken of the event on PutSecretValue (for a function
    in another account, the only proof the request comes from the rotation)."""
    sent: list[str | None] = []
    events = aws.client("secretsmanager").meta.events

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append(params.get("RotationToken"))

    events.register("provide-client-params.secretsmanager.PutSecretValue", record, "token")
    try:
        token = world.start()
        world.step("createSecret", token)
    finally:
        events.unregister("provide-client-params.secretsmanager.PutSecretValue", unique_id="token")

    assert sent == [world.service.last_rotation_token]
    assert sent[0]


def test_create_secret_run_again_says_its_version_exists(world, function_logs):
    token = world.start()
    world.step("createSecret", token)
    keys = world.access_key_ids()

    world.step("createSecret", token)

    assert records(function_logs, "The pending version already exists; nothing to create")
    assert world.access_key_ids() == keys


def test_create_secret_logs_the_key_it_made_and_stored_as_awspending(world, function_logs):
    token = world.start()

    world.step("createSecret", token)

    new_key = world.version_fields(VersionId=token)["username"]
    [created] = records(function_logs, "Created access key")
    assert created["access_key_id"] == new_key
    [stored] = records(function_logs, "Stored the new credential as AWSPENDING")
    assert stored["access_key_id"] == new_key


def test_every_log_line_of_a_step_names_the_secret_the_step_and_the_version(world, function_logs):
    token = world.start()

    world.step("createSecret", token)

    lines = [json.loads(line) for line in function_logs.getvalue().splitlines() if line]
    assert lines
    keys = ("secret_id", "step", "client_request_token")
    assert {tuple(line.get(key) for key in keys) for line in lines} == {
        (world.secret_id, "createSecret", token)
    }


def test_settings_changed_before_test_secret_are_all_named(world):
    token = world.start()
    world.run_steps(token, ("createSecret", "setSecret"))
    current = world.current()
    world.edit_current(
        smtp_port=current["smtp_port"] + 1,
        send_path_check=not current.get("send_path_check", True),
    )

    with pytest.raises(RotationStepError) as raised:
        world.step("testSecret", token)

    error = raised.value.error
    assert isinstance(error, RotationStateError)
    assert error.cause == (
        f"The secret's settings were changed after this rotation stored its pending version "
        f"{token} (smtp_port, send_path_check); that version still holds the old ones."
    )


def per_installation(output: str, name: str) -> list[tuple[str, float]]:
    """(installation, value) of each per-installation ``name`` record in ``output``."""
    found = []
    for line in output.splitlines():
        if '"_aws"' in line and f'"{name}"' in line:
            blob = json.loads(line)
            if "installation" in blob:
                value = blob[name]
                found.append((blob["installation"], value[0] if isinstance(value, list) else value))
    return found


def test_each_rotation_records_its_outcome_per_installation_for_the_dashboard(world, capsys):
    world.rotate()
    assert per_installation(capsys.readouterr().out, "RotationOutcome") == [
        ("kion/ses-smtp-credential", 1.0)
    ]
    world.backdate_retirements()  # the first one's replaced key has passed its rollback window
    token = world.start()
    world.run_steps(token, ("createSecret", "setSecret"))
    world.kion.app_config["smtp_username"] = "AKIASOMEONEELSE00000"
    with pytest.raises(RotationStepError):
        world.step("testSecret", token)
    assert per_installation(capsys.readouterr().out, "RotationOutcome") == [
        ("kion/ses-smtp-credential", 0.0)
    ]
