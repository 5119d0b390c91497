"""``ses-smtp-rotator rollback``, run against the demo's world as an operator runs it against AWS:
the command invokes the rotation function, which does the work."""

from __future__ import annotations

import json

from cli_world import assert_no_secret, installation, leave_rotation_pending, run_cli, settle

from ses_smtp_rotator.cli.exit_codes import EXIT_FAILED, EXIT_IN_PROGRESS, EXIT_OK, EXIT_USAGE


def current_key(world) -> str:
    value = world.client("secretsmanager").get_secret_value(
        SecretId=installation(world).secret_arn, VersionStage="AWSCURRENT"
    )
    return json.loads(value["SecretString"])["username"]


def key_statuses(world) -> dict[str, str]:
    listed = world.client("iam").list_access_keys(UserName=installation(world).iam_user_name)
    return {key["AccessKeyId"]: key["Status"] for key in listed["AccessKeyMetadata"]}


def rotate(world, capsys, name: str, *options: str) -> None:
    code, output = run_cli(capsys, "rotate", name, "--wait", "--poll", "0.1", *options)
    assert code == EXIT_OK, output
    world.hook.wait_idle(timeout=30)


def test_rollback_puts_the_replaced_key_back_and_says_when_the_other_goes(world, capsys):
    name = installation(world).secret_name
    rotate(world, capsys, name)  # the demo starts by adopting Kion's hand-made key
    settle(world)  # time passes: the watch deletes the adopted key after its window
    before = current_key(world)
    rotate(world, capsys, name, "--end-rollback-window")  # room for a key besides the current
    rotated_to = current_key(world)

    code, output = run_cli(capsys, "rollback", name, "--yes")

    assert code == EXIT_OK, output
    assert current_key(world) == before
    assert world.kion_server.app_config["smtp_username"] == before
    assert key_statuses(world)[before] == "Active"
    assert key_statuses(world)[rotated_to] == "Inactive"
    assert f"use key {before} again" in output
    assert f"Key {rotated_to} is Inactive; it is deleted after" in output
    assert f"ses-smtp-rotator rollback {name}" in output
    assert_no_secret(output, world)

    code, output = run_cli(capsys, "rollback", name, "--yes")

    assert code == EXIT_OK, output
    assert f"use key {rotated_to} again" in output  # asked again: back to the other key
    assert current_key(world) == rotated_to


def test_without_a_terminal_or_yes_nothing_changes(world, capsys):
    before = current_key(world)

    code, output = run_cli(capsys, "rollback", installation(world).secret_name)

    assert code == EXIT_USAGE
    assert "pass --yes" in output
    assert current_key(world) == before


def test_a_rollback_during_a_rotation_exits_3_and_names_the_way_out(world, capsys):
    leave_rotation_pending(world)

    code, output = run_cli(capsys, "rollback", installation(world).secret_name, "--yes")

    assert code == EXIT_IN_PROGRESS, output
    assert "A rotation is unfinished" in output
    assert "ses-smtp-rotator abandon" in output


def test_an_interrupted_rollback_shows_in_status_until_the_rollback_is_run_again(world, capsys):
    name = installation(world).secret_name
    rotate(world, capsys, name)
    settle(world)
    rotate(world, capsys, name, "--end-rollback-window")  # a key to go back to
    secretsmanager = world.client("secretsmanager")
    stages = secretsmanager.describe_secret(SecretId=installation(world).secret_arn)[
        "VersionIdsToStages"
    ]
    previous = next(vid for vid, labels in stages.items() if "AWSPREVIOUS" in labels)
    # What a rollback stopped mid-way leaves: a version labelled ROLLBACK, AWSCURRENT unmoved.
    secretsmanager.update_secret_version_stage(
        SecretId=installation(world).secret_arn, VersionStage="ROLLBACK", MoveToVersionId=previous
    )

    code, output = run_cli(capsys, "status", name)

    assert code == EXIT_FAILED, output
    assert "✗ Rollback" in output
    assert f"a rollback stopped before it finished: version {previous} is labelled ROLLBACK" in (
        output
    )
    assert f"Fix: Run it again: ses-smtp-rotator rollback {name}" in output

    code, output = run_cli(capsys, "rollback", name, "--yes")  # the advice, followed

    assert code == EXIT_OK, output
    code, output = run_cli(capsys, "status", name, "--json")
    assert code == EXIT_OK, output
    assert "rollback" not in json.loads(output)["checks"]
