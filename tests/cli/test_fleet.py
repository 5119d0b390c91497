"""Several installations at once: ``list``, ``status`` and ``rotate`` over ``--all``, names, globs
and ``--deployment``, found by the tags the stack puts on each installation's secrets."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib.metadata import version

import pytest
from cli_world import assert_no_secret, installation, leave_rotation_pending, run_cli

from ses_smtp_rotator.cli import main as cli
from ses_smtp_rotator.cli.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_SETUP, EXIT_USAGE
from ses_smtp_rotator.cli.fleet import DEPLOYMENT_TAG, INSTALLATION_TAG, STACK_TAG
from ses_smtp_rotator.demo.environment import FUNCTION_ARN


def tag(world, secret_arn: str, name: str, deployment: str, **more: str) -> None:
    tags = {INSTALLATION_TAG: name, DEPLOYMENT_TAG: deployment, STACK_TAG: f"{deployment}-stack"}
    world.client("secretsmanager").tag_resource(
        SecretId=secret_arn,
        Tags=[{"Key": key, "Value": value} for key, value in {**tags, **more}.items()],
    )


def second_installation(world, name: str) -> str:
    """Another installation secret as the stack makes it (credential empty, rotation attached)."""
    secretsmanager = world.client("secretsmanager")
    settings = json.loads(
        secretsmanager.get_secret_value(SecretId=installation(world).secret_arn)["SecretString"]
    )
    created = secretsmanager.create_secret(
        Name=f"{name}/ses-smtp-credential",
        SecretString=json.dumps({**settings, "username": "", "password": ""}),
    )
    secretsmanager.rotate_secret(
        SecretId=created["ARN"], RotationLambdaARN=FUNCTION_ARN, RotateImmediately=False
    )
    return created["ARN"]


@pytest.fixture(scope="module")
def deployments(demo) -> Iterator[dict[str, str]]:
    """Deployment prod: the demo's installation ``kion`` and ``second``; deployment staging:
    ``other``. The Kion API key secret carries the installation tag too, as the stack's does."""
    demo_installation = installation(demo)
    tag(demo, demo_installation.secret_arn, "kion", "prod")
    tag(
        demo,
        demo_installation.kion_api_key_secret_arn,
        "kion",
        "prod",
        **{"aws:cloudformation:logical-id": "RotationInstallationkionKionApiKey1A2B3C4D"},
    )
    secrets = {
        "kion": demo_installation.secret_arn,
        "second": second_installation(demo, "second"),
        "other": second_installation(demo, "other"),
    }
    tag(demo, secrets["second"], "second", "prod")
    tag(demo, secrets["other"], "other", "staging")
    return secrets


def squash(text: str) -> str:
    return re.sub(r" +", " ", text)


def row(output: str, name: str) -> str:
    return next(line for line in squash(output).splitlines() if line.startswith(f"{name} "))


def test_list_shows_every_installation_and_not_the_kion_api_key_secret(world, deployments, capsys):
    code, output = run_cli(capsys, "list")

    assert code == EXIT_OK, output
    assert [line.split()[0] for line in output.splitlines()[1:]] == ["kion", "other", "second"]
    assert "kion-api-key" not in output
    assert "kion/ses-smtp-credential prod" in squash(output)


def test_list_of_one_deployment_as_json(world, deployments, capsys):
    code, output = run_cli(capsys, "list", "--deployment", "prod", "--json")

    assert code == EXIT_OK
    listed = json.loads(output)
    assert [item["installation"] for item in listed] == ["kion", "second"]
    assert listed[1]["secret_arn"] == deployments["second"]
    assert {item["deployment"] for item in listed} == {"prod"}


def test_the_stack_name_selects_a_deployment_too(world, deployments, capsys):
    code, output = run_cli(capsys, "list", "--deployment", "staging-stack")

    assert code == EXIT_OK
    assert [line.split()[0] for line in output.splitlines()[1:]] == ["other"]


def test_status_of_a_deployment_is_one_table(world, deployments, capsys):
    code, output = run_cli(capsys, "status", "--deployment", "prod")

    assert code == EXIT_OK, output
    assert row(output, "kion").startswith("kion ✓ ok")
    assert row(output, "second").startswith("second ✓ ok")
    assert "other" not in output
    assert "2 installation(s): 2 ok. Exit code 0." in output
    assert_no_secret(output, world)


def test_status_exits_with_the_worst_installations_code(world, deployments, capsys):
    stuck = leave_rotation_pending(
        world,
        secret_arn=deployments["second"],
        made_ago=1900,
        records=[(1800, "INFO", "createSecret", "Step finished")],
    )
    try:
        code, output = run_cli(capsys, "status", "--all")
        json_code, json_output = run_cli(capsys, "status", "--all", "--json")
    finally:
        world.client("secretsmanager").update_secret_version_stage(
            SecretId=deployments["second"], VersionStage="AWSPENDING", RemoveFromVersionId=stuck
        )

    assert code == json_code == EXIT_FAILED, output
    assert row(output, "second").startswith("second ✗ failing")
    assert "pending: the rotation to version" in row(output, "second")
    assert row(output, "kion").startswith("kion ✓ ok")
    report = json.loads(json_output)
    assert report["exit_code"] == EXIT_FAILED
    by_name = {item["installation"]: item for item in report["installations"]}
    assert set(by_name) == {"kion", "other", "second"}
    assert by_name["second"]["status"]["pending"]["may_abandon"] is True
    assert by_name["kion"]["exit_code"] == EXIT_OK
    assert_no_secret(output + json_output, world)


def test_names_and_globs_select_installations(world, deployments, capsys):
    code, output = run_cli(capsys, "status", "sec*", "kion/ses-smtp-credential")

    assert code == EXIT_OK, output
    assert [line.split()[0] for line in output.splitlines()[1:3]] == ["kion", "second"]
    assert "2 installation(s)" in output


def test_a_glob_that_matches_nothing_is_a_setup_error(world, deployments, capsys):
    code, output = run_cli(capsys, "status", "nothing-like-this*")

    assert code == EXIT_SETUP
    assert "No installation matches 'nothing-like-this*'" in output
    assert "ses-smtp-rotator list" in output


def test_one_failing_name_among_several_is_its_own_row(world, deployments, capsys):
    code, output = run_cli(capsys, "status", "kion/ses-smtp-credential", "no-such/secret")

    assert code == EXIT_SETUP
    assert row(output, "no-such/secret").startswith("no-such/secret ! could not ask")
    assert row(output, "kion/ses-smtp-credential").startswith("kion/ses-smtp-credential ✓ ok")


def test_rotate_a_selection_and_wait_for_each(world, deployments, capsys):
    code, output = run_cli(
        capsys, "rotate", "--deployment", "prod", "kion", "--wait", "--poll", "0.1", "--yes"
    )

    assert code == EXIT_OK, output
    assert "Rotating 1 installation(s)" in output
    assert row(output, "kion").startswith("kion ✓ done Rotation finished in")
    assert "1 installation(s): 1 done. Exit code 0." in output
    assert_no_secret(output, world)


def test_rotate_all_as_json_reports_each_and_the_worst(world, deployments, capsys):
    stuck = leave_rotation_pending(
        world,
        secret_arn=deployments["second"],
        made_ago=1900,
        records=[(1800, "INFO", "createSecret", "Step finished")],
    )
    try:
        code = cli.main(["rotate", "--deployment", "prod", "--json", "--yes"])
        captured = capsys.readouterr()
    finally:
        world.client("secretsmanager").update_secret_version_stage(
            SecretId=deployments["second"], VersionStage="AWSPENDING", RemoveFromVersionId=stuck
        )
    assert world.hook.wait_idle(timeout=20)

    assert code == EXIT_FAILED
    report = json.loads(captured.out)  # progress goes to standard error
    assert "second: ✗ failed" in captured.err
    by_name = {item["installation"]: item for item in report["installations"]}
    assert by_name["kion"]["exit_code"] == EXIT_OK
    assert "Started a rotation" in by_name["kion"]["output"]
    assert by_name["second"]["exit_code"] == EXIT_FAILED
    assert "ses-smtp-rotator abandon " in by_name["second"]["output"]
    assert report["exit_code"] == EXIT_FAILED


def test_status_needs_a_secret_or_a_selection(capsys):
    code = None
    with pytest.raises(SystemExit) as exited:
        code = run_cli(capsys, "status")
    assert code is None
    assert exited.value.code == EXIT_USAGE
    assert "name a SECRET" in capsys.readouterr().err


def test_version_comes_from_the_package(capsys):
    with pytest.raises(SystemExit) as exited:
        run_cli(capsys, "--version")
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"ses-smtp-rotator {version('ses-smtp-rotator')}"


def test_one_installation_by_its_name(world, deployments, capsys):
    code, output = run_cli(capsys, "status", "second")

    assert code == EXIT_OK, output
    assert "Installation secret second/ses-smtp-credential" in squash(output)


def test_rotate_all_without_yes_asks_and_a_script_without_a_terminal_is_refused(
    world, deployments, capsys
):
    before = world.client("secretsmanager").describe_secret(SecretId=deployments["kion"])
    code, output = run_cli(capsys, "rotate", "--deployment", "prod")
    assert code == EXIT_USAGE
    assert "rotating 2 installation(s) (kion, second) needs a confirmation" in output
    assert "pass --yes" in output
    after = world.client("secretsmanager").describe_secret(SecretId=deployments["kion"])
    assert after["VersionIdsToStages"] == before["VersionIdsToStages"]


def test_rotate_all_asks_on_a_terminal_and_no_rotates_nothing(
    world, deployments, capsys, monkeypatch
):
    asked = []
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or "n")
    before = world.client("secretsmanager").describe_secret(SecretId=deployments["kion"])
    code, output = run_cli(capsys, "rotate", "--deployment", "prod")
    assert code == EXIT_USAGE
    assert asked == ["Rotate 2 installation(s): kion, second? [y/N] "]
    assert "Nothing was rotated." in output
    after = world.client("secretsmanager").describe_secret(SecretId=deployments["kion"])
    assert after["VersionIdsToStages"] == before["VersionIdsToStages"]


def test_dry_run_prints_per_installation_what_its_rotation_would_do(world, deployments, capsys):
    before = world.client("secretsmanager").describe_secret(SecretId=deployments["kion"])
    code, output = run_cli(capsys, "rotate", "--deployment", "prod", "--dry-run")
    assert code == EXIT_OK, output
    assert "kion/ses-smtp-credential: a rotation now would (nothing was changed)" in output
    assert "second/ses-smtp-credential: a rotation now would" in output
    user = installation(world).iam_user_name
    assert f"1 createSecret: create a new access key for {user}" in output
    assert "wait until SES accepts the new key repeatedly (SMTP AUTH at 127.0.0.1:" in output
    assert (
        "4 finishSecret: make the new version AWSCURRENT and retire the key it replaces" in output
    )
    after = world.client("secretsmanager").describe_secret(SecretId=deployments["kion"])
    assert after["VersionIdsToStages"] == before["VersionIdsToStages"]
    assert_no_secret(output, world)
