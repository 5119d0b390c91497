"""``ses-smtp-rotator rotate``, run against the demo's world as an operator runs it against AWS."""

from __future__ import annotations

import json
import uuid

import pytest
from cli_world import (
    age_left_records,
    assert_no_secret,
    function_configured,
    installation,
    leave_rotation_pending,
    run_cli,
    when_printed,
)
from moto.core import DEFAULT_ACCOUNT_ID
from moto.secretsmanager.models import secretsmanager_backends

from ses_smtp_rotator.cli.exit_codes import (
    EXIT_FAILED,
    EXIT_IN_PROGRESS,
    EXIT_OK,
    EXIT_SETUP,
    EXIT_TIMEOUT,
)
from ses_smtp_rotator.demo.environment import FUNCTION_ARN, REGION

FAST = ("--poll", "0.1")
RETIRED = "ses-smtp-rotator:retired:"


def current(world) -> tuple[str, str]:
    value = world.client("secretsmanager").get_secret_value(
        SecretId=installation(world).secret_arn, VersionStage="AWSCURRENT"
    )
    return value["VersionId"], json.loads(value["SecretString"])["username"]


def test_wait_follows_every_step_until_awscurrent_moves(world, capsys):
    before_version, before_key = current(world)

    code, output = run_cli(capsys, "rotate", installation(world).secret_name, "--wait", *FAST)

    assert code == EXIT_OK, output
    version, key = current(world)
    assert version != before_version
    assert key != before_key
    assert world.kion_server.app_config["smtp_username"] == key
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        assert step in output
    assert "SES accepts the new key" in output
    assert "✓ Rotation finished" in output
    assert version in output
    assert_no_secret(output, world)


def test_without_wait_it_returns_at_once_and_a_second_rotation_is_refused(world, capsys):
    with world.hook.held_before("setSecret"):  # the first rotation stays in progress
        code, output = run_cli(capsys, "rotate", installation(world).secret_arn)
        assert code == EXIT_OK, output
        assert "Started a rotation" in output
        token = output.split("new version ", 1)[1].split()[0]

        code, output = run_cli(capsys, "rotate", installation(world).secret_arn)
        assert code == EXIT_IN_PROGRESS, output
        assert f"already in progress: version {token} is AWSPENDING" in output
        assert f"rotate {installation(world).secret_name} --wait" in output
        # The function is working on it: giving it up now would race with it.
        assert "ses-smtp-rotator abandon" not in output
        assert "Do not give it up yet" in output
    assert world.hook.wait_idle(timeout=20)
    assert not world.hook.failures
    assert world.hook.completed[-1] == token


def test_wait_attaches_to_the_rotation_in_progress_and_shows_its_steps(world, capsys):
    with world.hook.held_before("setSecret") as first_rotation_goes_on:
        code, output = run_cli(capsys, "rotate", installation(world).secret_arn)
        assert code == EXIT_OK, output
        token = output.split("new version ", 1)[1].split()[0]

        with when_printed("following it instead of starting another", first_rotation_goes_on.set):
            code, output = run_cli(
                capsys, "rotate", installation(world).secret_name, "--wait", *FAST
            )

    assert code == EXIT_OK, output
    assert f"already in progress (version {token}" in output
    assert "following it instead of starting another" in output
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        assert step in output
    assert "✓ Rotation finished in" in output
    assert current(world)[0] == token
    assert world.hook.completed[-1] == token  # no second rotation was started
    assert_no_secret(output, world)


def test_a_rotation_the_function_left_alone_past_its_timeout_is_stuck(world, capsys):
    version = leave_rotation_pending(
        world, made_ago=1900, records=[(1800, "INFO", "createSecret", "Step finished")]
    )

    code, output = run_cli(capsys, "rotate", installation(world).secret_name, "--wait", *FAST)

    assert code == EXIT_FAILED, output
    assert f"version {version} is AWSPENDING" in output
    assert "has not touched it for 18" in output  # 1800 s and counting
    assert "the function's log" in output
    assert "900 s (default: lambda:GetFunctionConfiguration answered" in output
    assert f"ses-smtp-rotator abandon {installation(world).secret_name}" in output
    assert "following it" not in output


def test_the_functions_recent_activity_outweighs_an_old_pending_version(world, capsys):
    leave_rotation_pending(
        world, made_ago=900, records=[(5, "INFO", "createSecret", "Step finished")]
    )

    code, output = run_cli(capsys, "rotate", installation(world).secret_name)

    assert code == EXIT_IN_PROGRESS, output
    assert "ses-smtp-rotator abandon" not in output
    assert "Do not give it up yet" in output


def test_without_logs_the_pending_versions_age_decides(world, capsys):
    version = leave_rotation_pending(world, made_ago=1900)

    code, output = run_cli(capsys, "rotate", installation(world).secret_name)

    assert code == EXIT_FAILED, output
    assert "the pending version's age" in output
    assert f"ses-smtp-rotator abandon {installation(world).secret_name}" in output
    assert f"version {version}" in output


def test_the_functions_configured_timeout_is_used_when_it_can_be_read(world, capsys):
    leave_rotation_pending(
        world, made_ago=900, records=[(800, "INFO", "createSecret", "Step finished")]
    )

    with function_configured(world, timeout=900):
        code, output = run_cli(capsys, "rotate", installation(world).secret_name)

    assert code == EXIT_IN_PROGRESS, output
    assert "900 s (the function's configuration)" in output
    assert "ses-smtp-rotator abandon" not in output


def test_a_failure_is_reported_with_the_functions_cause_and_fix(world, capsys):
    world.kion_server.fail_requests(403, count=None, methods=["PATCH"])

    code, output = run_cli(capsys, "rotate", installation(world).secret_name, "--wait", *FAST)

    assert code == EXIT_FAILED, output
    assert "✗ The rotation failed in setSecret (KionPermissionError)" in output
    assert "403" in output
    assert "Fix: Give the key's user a Kion permission scheme" in output
    # The function touched the rotation a moment ago: no advice to give it up yet.
    assert "ses-smtp-rotator abandon" not in output
    assert "follows the retry" in output
    assert "shows the command to give it up" in output
    assert_no_secret(output, world)


def test_a_rotation_with_no_progress_gives_up_with_its_own_exit_code(world, capsys):
    with world.hook.held_before("setSecret"):  # no step runs until the command has given up
        code, output = run_cli(
            capsys, "rotate", installation(world).secret_name, "--wait", "--timeout", "0.5", *FAST
        )

    assert code == EXIT_TIMEOUT, output
    assert "Gave up waiting" in output
    assert "may still be running" in output


def test_an_unknown_secret_is_a_setup_error(world, capsys):
    code, output = run_cli(capsys, "rotate", "no-such/secret")

    assert code == EXIT_SETUP
    assert "does not exist" in output
    assert "Fix:" in output


def test_a_secret_without_a_rotation_function_is_not_rotated(world, capsys):
    # A secret the stack did not make (the demo's Kion API key secret is now described as the
    # stack describes its own, and gets that answer: test_status).
    api_key_secret = world.client("secretsmanager").create_secret(
        Name=f"other/plain-{uuid.uuid4().hex[:6]}", SecretString="not-a-setting"
    )["ARN"]

    code, output = run_cli(capsys, "rotate", api_key_secret)

    assert code == EXIT_SETUP
    assert "no rotation function attached" in output
    assert "not the Kion API key secret" in output
    stages = world.client("secretsmanager").describe_secret(SecretId=api_key_secret)
    assert len(stages["VersionIdsToStages"]) == 1  # moto's RotateSecret was never called


def test_no_region_is_a_setup_error(world, capsys, monkeypatch):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")

    code, output = run_cli(capsys, "rotate", "kion/ses-smtp-credential")

    assert code == EXIT_SETUP
    assert "No AWS region" in output


@pytest.mark.parametrize("command", ["rotate", "status", "derive"])
def test_every_command_explains_itself(command, capsys):
    with pytest.raises(SystemExit) as exited:
        run_cli(capsys, command, "--help")
    assert exited.value.code == 0
    usage = capsys.readouterr().out
    assert f"ses-smtp-rotator {command}" in usage
    if command != "derive":
        assert "exit codes:" in usage
        assert "--region" in usage
        assert "--profile" in usage


def test_the_demos_secrets_manager_refuses_a_second_rotation_like_the_real_one(world):
    secretsmanager = world.client("secretsmanager")
    with world.hook.held_before("setSecret"):
        first = secretsmanager.rotate_secret(SecretId=installation(world).secret_arn)
        with pytest.raises(secretsmanager.exceptions.InvalidRequestException) as refused:
            secretsmanager.rotate_secret(SecretId=installation(world).secret_arn)
        with pytest.raises(secretsmanager.exceptions.InvalidRequestException):
            secretsmanager.rotate_secret(
                SecretId=installation(world).secret_arn, ClientRequestToken=first["VersionId"]
            )
    assert "previous rotation isn't complete" in str(refused.value)
    assert world.hook.wait_idle(timeout=20)
    assert first["VersionId"] in world.hook.completed


def test_without_the_functions_logs_it_follows_the_labels(world, capsys):
    code, output = run_cli(
        capsys,
        "rotate",
        installation(world).secret_name,
        "--wait",
        "--log-group",
        "/aws/lambda/not-this-one",
        *FAST,
    )

    assert code == EXIT_OK, output
    assert "the function's logs cannot be read: log group /aws/lambda/not-this-one" in output
    assert "following the secret's labels only" in output
    assert "✓ Rotation finished" in output


def test_a_followed_rotation_the_function_stops_touching_is_reported_stuck(world, capsys):
    """Attached while the function may still be working on it (its last record 5 s old), then
    no record for longer than the function's timeout (1 s here, plus the grace of 30 s for the
    hop between steps): the record is made 40 s older once the command follows, as if that
    much time had passed."""
    version = leave_rotation_pending(
        world, made_ago=60, records=[(5, "INFO", "createSecret", "Step finished")]
    )

    with (
        function_configured(world, timeout=1),
        when_printed(
            "following it instead of starting another",
            lambda: age_left_records(world, version, seconds=40),
        ),
    ):
        code, output = run_cli(capsys, "rotate", installation(world).secret_name, "--wait", *FAST)

    assert code == EXIT_FAILED, output
    assert "following it instead of starting another" in output
    assert "createSecret  Step finished" in output  # its history, from its first step
    assert "✗ The function has not touched the rotation for" in output
    assert "1 s (the function's configuration)" in output
    assert f"ses-smtp-rotator abandon {installation(world).secret_name}" in output


def test_a_kion_api_key_secret_with_its_renewal_attached_is_not_rotated(world, capsys):
    """Once the Kion API key renews itself, its secret has a rotation function too: named as the
    stack names it, it is recognised without reading its value."""
    secretsmanager = world.client("secretsmanager")
    key_secret = secretsmanager.create_secret(
        Name=f"ses-smtp-rotator/prod/kion-api-key/{uuid.uuid4().hex[:6]}",
        SecretString=json.dumps({"api_key": "not-a-real-key", "api_key_id": 3}),
    )["ARN"]
    attached = secretsmanager_backends[DEFAULT_ACCOUNT_ID][REGION].describe_secret(key_secret)
    attached.rotation_lambda_arn, attached.rotation_enabled = FUNCTION_ARN, True
    attached.rotation_requested = True

    code, output = run_cli(capsys, "rotate", key_secret, "--wait")

    assert code == EXIT_SETUP
    assert "holds a Kion App API key, not an installation's SMTP credential" in output
    assert f"aws secretsmanager rotate-secret --secret-id {key_secret}" in output
    assert len(secretsmanager.describe_secret(SecretId=key_secret)["VersionIdsToStages"]) == 1


def stages(world) -> dict[str, list[str]]:
    described = world.client("secretsmanager").describe_secret(
        SecretId=installation(world).secret_arn
    )
    return described["VersionIdsToStages"]


def test_end_rollback_window_lets_the_rotation_delete_the_key_still_in_its_window(world, capsys):
    name = installation(world).secret_name
    iam = world.client("iam")
    user = json.loads(
        world.client("secretsmanager").get_secret_value(SecretId=installation(world).secret_arn)[
            "SecretString"
        ]
    )["iam_user_name"]
    code, output = run_cli(capsys, "rotate", name, "--wait", *FAST)
    assert code == EXIT_OK, output
    _, first_key = current(world)
    tags = world.client("secretsmanager").describe_secret(SecretId=installation(world).secret_arn)
    [original_key] = [
        t["Key"].rsplit(":", 1)[1] for t in tags["Tags"] if t["Key"].startswith(RETIRED)
    ]

    code, output = run_cli(capsys, "rotate", name, "--wait", *FAST)
    assert code == EXIT_FAILED, output
    assert f"and {original_key}, the " in output
    assert "the last rotation deactivated, which stays in its rollback window until" in output
    assert f"rotate {name} --end-rollback-window" in output
    assert world.hook.wait_idle(timeout=20)
    failed = next(v for v, s in stages(world).items() if s == ["AWSPENDING"])
    world.client("secretsmanager").update_secret_version_stage(  # given up, by hand
        SecretId=installation(world).secret_arn,
        VersionStage="AWSPENDING",
        RemoveFromVersionId=failed,
    )

    code, output = run_cli(capsys, "rotate", name, "--wait", "--end-rollback-window", *FAST)

    assert code == EXIT_OK, output
    assert f"Ended the rollback window of {original_key}" in output
    _, second_key = current(world)
    statuses = {
        key["AccessKeyId"]: key["Status"]
        for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    }
    assert statuses == {second_key: "Active", first_key: "Inactive"}
    tags = world.client("secretsmanager").describe_secret(SecretId=installation(world).secret_arn)
    assert "ses-smtp-rotator:end-rollback-window" not in {t["Key"] for t in tags.get("Tags", [])}
    assert_no_secret(output, world)
