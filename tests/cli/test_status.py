"""``ses-smtp-rotator status``, run against the demo's world as an operator runs it against AWS."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from cli_world import assert_no_secret, installation, leave_rotation_pending, run_cli
from moto.core import DEFAULT_ACCOUNT_ID
from moto.secretsmanager.models import secretsmanager_backends

from ses_smtp_rotator.cli.exit_codes import (
    EXIT_FAILED,
    EXIT_IN_PROGRESS,
    EXIT_OK,
    EXIT_SETUP,
    EXIT_UNCHECKED,
)
from ses_smtp_rotator.demo.environment import FUNCTION_ARN, REGION


@pytest.fixture
def rotated(world, capsys):
    """The world after a finished rotation: AWSCURRENT holds the key Kion sends with."""
    if not current_key(world):
        code, output = run_cli(
            capsys, "rotate", installation(world).secret_name, "--wait", "--poll", "0.1"
        )
        assert code == EXIT_OK, output
        assert world.hook.wait_idle(timeout=10)
    return world


def squash(text: str) -> str:
    """The output with runs of spaces made one, so the checks do not depend on column widths."""
    return re.sub(r" +", " ", text)


def status(capsys, *args: str) -> tuple[int, str]:
    code, output = run_cli(capsys, "status", *args)
    return code, squash(output)


def current_key(world) -> str:
    value = world.client("secretsmanager").get_secret_value(
        SecretId=installation(world).secret_arn, VersionStage="AWSCURRENT"
    )
    return json.loads(value["SecretString"])["username"]


def test_a_healthy_installation(rotated, capsys):
    code, output = status(capsys, installation(rotated).secret_name, "--check-smtp")

    assert code == EXIT_OK, output
    key = current_key(rotated)
    assert f"Current key {key}" in output
    assert "s ago)" in output  # the key's age and the last rotation
    assert "Next rotation" in output
    assert "cron(0 14 ? * TUE#1 *) UTC, within 15 min" in output
    assert f"✓ Kion sends with {key}, the AWSCURRENT key" in output
    assert "✓ Pending rotation no rotation in progress" in output
    assert "✓ SES SMTP" in output
    assert "accepts the AWSCURRENT credential" in output
    assert_no_secret(output, rotated)


def test_json_for_machines(rotated, capsys):
    code, output = status(capsys, installation(rotated).secret_arn, "--json")

    assert code == EXIT_OK
    report = json.loads(output)
    assert report["access_key_id"] == current_key(rotated)
    assert report["key_age_days"] >= 0
    assert report["last_rotated"]
    assert report["next_rotation"]
    assert report["kion_username"] == report["access_key_id"]
    assert report["checks"]["kion"]["ok"] is True
    assert report["pending"] is None
    assert report["problems"] == []
    assert "ses" not in report["checks"]  # only with --check-smtp (or from the watch)
    assert_no_secret(output, rotated)


def test_kion_configured_with_another_key_is_a_problem(rotated, capsys):
    kion = rotated.kion_server.app_config
    kept = kion["smtp_username"]
    kion["smtp_username"] = "AKIAEXAMPLEOTHERKEY1"
    try:
        code, output = status(capsys, installation(rotated).secret_name)
    finally:
        kion["smtp_username"] = kept

    assert code == EXIT_FAILED
    assert f"✗ Kion sends with AKIAEXAMPLEOTHERKEY1, not the AWSCURRENT key {kept}" in output
    assert "Fix:" in output


def test_check_smtp_reports_a_refused_credential(rotated, capsys):
    rotated.smtp.refuse_all = True

    code, output = status(capsys, installation(rotated).secret_name, "--check-smtp")

    assert code == EXIT_FAILED
    assert "✗ SES SMTP" in output
    assert "refuses the AWSCURRENT credential (535)" in output


def test_a_failed_rotation_is_shown_with_its_error_and_what_to_do(rotated, capsys):
    rotated.kion_server.fail_requests(401, count=None, methods=["PATCH"])
    code, _ = run_cli(
        capsys, "rotate", installation(rotated).secret_name, "--wait", "--poll", "0.1"
    )
    assert code == EXIT_FAILED
    rotated.hook.wait_idle(timeout=10)

    code, output = status(capsys, installation(rotated).secret_name)

    assert code == EXIT_FAILED
    assert "✗ Pending rotation" in output
    assert "failed in setSecret" in output
    assert "rejected the App API key (401)" in output
    assert "the function last touched it" in output
    # Secrets Manager may retry it at any moment: no command to give it up yet.
    assert "ses-smtp-rotator abandon" not in output
    assert "Do not give it up yet" in output
    assert_no_secret(output, rotated)


def test_a_failure_the_function_left_alone_past_its_timeout_can_be_given_up(world, capsys):
    version = leave_rotation_pending(
        world,
        made_ago=2000,
        records=[
            (1990, "INFO", "createSecret", "Step finished"),
            (1900, "ERROR", "setSecret", "Kion at https://kion rejected the App API key (401)."),
        ],
    )

    code, output = status(capsys, installation(world).secret_name)

    assert code == EXIT_FAILED
    assert f"the rotation to version {version} failed in setSecret" in output
    assert "has not touched it for 19" in output
    assert f"ses-smtp-rotator abandon {installation(world).secret_name}" in output

    # What status says to do works: give the rotation up and rotate again.
    report = json.loads(status(capsys, installation(world).secret_name, "--json")[1])
    assert report["pending"]["may_abandon"] is True
    assert report["verdict"] == "failing"
    world.client("secretsmanager").update_secret_version_stage(
        SecretId=installation(world).secret_arn,
        VersionStage="AWSPENDING",
        RemoveFromVersionId=version,
    )
    code, output = run_cli(
        capsys, "rotate", installation(world).secret_name, "--wait", "--poll", "0.1"
    )
    assert code == EXIT_OK, output


def test_a_rotation_left_alone_past_the_function_timeout_is_stuck(rotated, capsys):
    version = leave_rotation_pending(
        rotated, made_ago=1700, records=[(1650, "INFO", "createSecret", "Step finished")]
    )

    code, output = status(capsys, installation(rotated).secret_name)

    assert code == EXIT_FAILED, output
    assert f"the rotation to version {version} is stuck" in output
    assert "timeout 900 s (default: lambda:GetFunctionConfiguration answered" in output
    assert f"ses-smtp-rotator abandon {installation(rotated).secret_name}" in output


def test_kion_refusing_the_api_key_fails_status(rotated, capsys):
    rotated.kion_server.fail_requests(401, count=None)  # the key expired or was revoked

    code, output = status(capsys, installation(rotated).secret_name)

    assert code == EXIT_FAILED, output
    assert "✗ Kion a rotation would fail now" in output
    assert "rejected the App API key (401)" in output
    assert "Fix:" in output
    assert_no_secret(output, rotated)


@pytest.mark.parametrize("stored", ['{"api_key": ""}', "   "])
def test_an_empty_kion_api_key_secret_fails_status(rotated, capsys, stored):
    secretsmanager = rotated.client("secretsmanager")
    key_secret = installation(rotated).kion_api_key_secret_arn
    kept = secretsmanager.get_secret_value(SecretId=key_secret)["SecretString"]
    secretsmanager.put_secret_value(SecretId=key_secret, SecretString=stored)
    try:
        code, output = status(capsys, installation(rotated).secret_name)
    finally:
        secretsmanager.put_secret_value(SecretId=key_secret, SecretString=kept)

    assert code == EXIT_FAILED, output
    assert "✗ Kion a rotation would fail now: The Kion API key secret" in output
    assert "is empty" in output


def test_an_inactive_current_key_fails_status(rotated, capsys):
    iam = rotated.client("iam")
    user, key = installation(rotated).iam_user_name, current_key(rotated)
    iam.update_access_key(UserName=user, AccessKeyId=key, Status="Inactive")
    try:
        code, output = status(capsys, installation(rotated).secret_name)
    finally:
        iam.update_access_key(UserName=user, AccessKeyId=key, Status="Active")

    assert code == EXIT_FAILED, output
    assert f"✗ Access key the AWSCURRENT key {key} is inactive" in output


def test_the_kion_api_key_secret_gets_the_same_answer_as_from_rotate(world, capsys):
    api_key_secret = installation(world).kion_api_key_secret_arn

    status_code, status_output = status(capsys, api_key_secret)
    rotate_code, rotate_output = run_cli(capsys, "rotate", api_key_secret)

    assert status_code == rotate_code == EXIT_SETUP
    first_line = rotate_output.splitlines()[0]
    # The demo describes the key secret as the stack does, so both name it for what it is.
    assert "holds a Kion App API key, not an installation's SMTP credential" in first_line
    assert squash(first_line) in status_output


def test_a_kion_api_key_secret_with_a_rotation_function_is_named_for_what_it_is(world, capsys):
    """Once the Kion API key renews itself, its secret has a rotation function too."""
    secretsmanager = world.client("secretsmanager")
    renewed = secretsmanager.create_secret(
        Name=f"renewed/kion-api-key-{uuid.uuid4().hex[:6]}",
        SecretString=json.dumps({"api_key": "not-a-real-key", "api_key_id": 7}),
    )
    backend = secretsmanager_backends[DEFAULT_ACCOUNT_ID][REGION]
    attached = backend.describe_secret(renewed["ARN"])
    attached.rotation_lambda_arn, attached.rotation_enabled = FUNCTION_ARN, True
    attached.rotation_requested = True

    code, output = status(capsys, renewed["ARN"])

    assert code == EXIT_SETUP
    assert "holds a Kion App API key, not an installation's SMTP credential" in output
    assert "not-a-real-key" not in output


def test_a_rotation_in_progress(rotated, capsys):
    with rotated.hook.held_before("setSecret"):  # in progress until status has looked
        assert run_cli(capsys, "rotate", installation(rotated).secret_name)[0] == EXIT_OK
        code, output = status(capsys, installation(rotated).secret_name)

    assert code == EXIT_IN_PROGRESS, output
    assert "✓ Pending rotation a rotation is in progress" in output
    assert "the function last touched it" in output
    assert "ses-smtp-rotator abandon" not in output
    assert "timeout 900 s (default: lambda:GetFunctionConfiguration" in output


def test_before_the_first_rotation(world, capsys):
    """A secret as the stack creates it: settings only, Kion on a key made by hand."""
    secretsmanager = world.client("secretsmanager")
    settings = json.loads(
        secretsmanager.get_secret_value(SecretId=installation(world).secret_arn)["SecretString"]
    )
    fresh = secretsmanager.create_secret(
        Name="fresh/ses-smtp-credential",
        SecretString=json.dumps({**settings, "username": "", "password": ""}),
    )
    secretsmanager.rotate_secret(
        SecretId=fresh["ARN"], RotationLambdaARN=FUNCTION_ARN, RotateImmediately=False
    )
    code, output = status(capsys, fresh["ARN"], "--check-smtp")

    assert code == EXIT_OK, output
    assert "none yet: the first rotation adopts the key Kion sends with" in output
    assert "the secret holds no credential yet" in output
    assert "Last rotation never" in output
    assert "✓ SES SMTP no credential yet to try" in output


def fresh_installation(world, **changes: str) -> str:
    """A second installation secret like the stack makes, with ``changes`` to its settings."""
    secretsmanager = world.client("secretsmanager")
    settings = json.loads(
        secretsmanager.get_secret_value(SecretId=installation(world).secret_arn)["SecretString"]
    )
    fresh = secretsmanager.create_secret(
        Name=f"fresh-{uuid.uuid4().hex[:6]}/ses-smtp-credential",
        SecretString=json.dumps({**settings, "username": "", "password": "", **changes}),
    )
    secretsmanager.rotate_secret(
        SecretId=fresh["ARN"], RotationLambdaARN=FUNCTION_ARN, RotateImmediately=False
    )
    return fresh["ARN"]


def test_a_missing_kion_api_key_secret_fails_status(world, capsys):
    secret = fresh_installation(world, kion_api_key_secret_id="no-such/kion-api-key")

    code, output = status(capsys, secret)

    assert code == EXIT_FAILED, output
    assert "✗ Kion a rotation would fail now" in output
    assert "no-such/kion-api-key does not exist or has no value" in output


def test_a_kion_unreachable_from_here_is_unchecked_not_healthy(world, capsys):
    secret = fresh_installation(world, kion_url="https://127.0.0.1:9")

    code, output = status(capsys, secret)

    assert code == EXIT_UNCHECKED, output
    assert "? Kion could not ask Kion" in output
    assert "This check ran from your machine" in output
    report = json.loads(status(capsys, secret, "--json")[1])
    assert report["verdict"] == "unchecked"
    assert report["unchecked"] == ["kion", "kion_api_key"]  # both ask Kion


def test_an_unknown_secret(world, capsys):
    code, output = status(capsys, "no-such/secret")

    assert code == EXIT_SETUP
    assert "does not exist" in output


def test_kion_sending_through_another_region_is_a_problem(rotated, capsys):
    kion = rotated.kion_server.app_config
    kept = kion["smtp_host"]
    kion["smtp_host"] = "email-smtp.eu-west-1.amazonaws.com"
    try:
        code, output = status(capsys, installation(rotated).secret_name)
    finally:
        kion["smtp_host"] = kept

    assert code == EXIT_FAILED
    assert "✗ Kion's SMTP host Kion sends through email-smtp.eu-west-1.amazonaws.com" in output
    assert "ses_region is us-east-1" in output
    ok_code, ok_output = status(capsys, installation(rotated).secret_name)
    assert ok_code == EXIT_OK, ok_output
    assert "✓ Kion's SMTP host" in ok_output


def test_aws_region_alone_names_the_region(world, capsys, monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", REGION)

    code, output = status(capsys, installation(world).secret_name, "--no-watch")

    assert "No AWS region is set" not in output
    assert code != EXIT_SETUP, output


def test_json_carries_the_function_timeout_as_a_number(world, capsys):
    code, output = status(capsys, installation(world).secret_name, "--json", "--no-watch")

    report = json.loads(output)
    assert report["function_timeout_seconds"] == 900
    assert code != EXIT_SETUP


def test_the_replaced_key_is_shown_retired_with_its_last_use_before_deactivation(world, capsys):
    name = installation(world).secret_name
    code, output = run_cli(capsys, "rotate", name, "--wait", "--poll", "0.1")
    assert code == EXIT_OK, output
    assert world.hook.wait_idle(timeout=10)

    code, output = status(capsys, name, "--json")

    assert code == EXIT_OK, output
    document = json.loads(output)
    [retired] = document["retired_keys"]
    assert retired["origin"] in ("adopted", "made")
    assert retired["status"] == "Inactive"
    assert "(read before deactivation)" in retired["last_used_before_deactivation"]
    roles = {key["access_key_id"]: key["role"] for key in document["access_keys"]}
    assert roles[retired["access_key_id"]] == "retired"
    assert document["current_key_last_used"]

    code, output = status(capsys, name)
    assert f"✓ Retired keys {retired['access_key_id']} (" in output
    assert "deleted after" in output
    assert "(information only)" in output
