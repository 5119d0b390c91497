"""``ses-smtp-rotator status``, run against the demo's world as an operator runs it against AWS."""

from __future__ import annotations

import json
import re

import pytest
from cli_world import assert_no_secret, installation, run_cli

from ses_smtp_rotator.demo.environment import FUNCTION_ARN
from ses_smtp_rotator.exit_codes import EXIT_FAILED, EXIT_IN_PROGRESS, EXIT_OK, EXIT_SETUP


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
    assert "smtp" not in report["checks"]  # only with --check-smtp
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
    assert "update-secret-version-stage" in output
    assert "--version-stage AWSPENDING --remove-from-version-id" in output
    assert_no_secret(output, rotated)

    # What status says to do works: abandon the rotation and rotate again.
    rotated.kion_server.clear_faults()
    pending = json.loads(status(capsys, installation(rotated).secret_name, "--json")[1])
    rotated.client("secretsmanager").update_secret_version_stage(
        SecretId=installation(rotated).secret_arn,
        VersionStage="AWSPENDING",
        RemoveFromVersionId=pending["pending"]["version_id"],
    )
    code, output = run_cli(
        capsys, "rotate", installation(rotated).secret_name, "--wait", "--poll", "0.1"
    )
    assert code == EXIT_OK, output


def test_a_rotation_in_progress(rotated, capsys):
    rotated.smtp.propagation_delay = 1.5
    try:
        assert run_cli(capsys, "rotate", installation(rotated).secret_name)[0] == EXIT_OK
        code, output = status(capsys, installation(rotated).secret_name)
    finally:
        rotated.smtp.propagation_delay = 0.3

    assert code == EXIT_IN_PROGRESS, output
    assert "✓ Pending rotation a rotation is in progress" in output


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
    assert "? SES SMTP the secret holds no credential yet to try" in output


def test_an_unknown_secret(world, capsys):
    code, output = status(capsys, "no-such/secret")

    assert code == EXIT_SETUP
    assert "does not exist" in output
