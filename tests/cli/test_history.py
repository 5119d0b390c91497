"""``ses-smtp-rotator history``: past rotations from the function's own log records."""

from __future__ import annotations

import json

from cli_world import assert_no_secret, installation, run_cli

from ses_smtp_rotator.cli.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE

FAST = ("--poll", "0.1")


def rotate(world, capsys) -> tuple[int, str]:
    return run_cli(capsys, "rotate", installation(world).secret_arn, "--wait", *FAST)


def test_a_finished_then_a_failed_rotation_are_listed_newest_first_with_cause_and_fix(
    world, capsys
):
    code, output = rotate(world, capsys)
    assert code == EXIT_OK, output
    world.smtp.refuse_all = True  # SES refuses every new key: setSecret fails
    code, output = run_cli(
        capsys, "rotate", installation(world).secret_arn, "--wait", "--end-rollback-window", *FAST
    )
    assert code == EXIT_FAILED, output
    world.smtp.refuse_all = False

    code, output = run_cli(capsys, "history", installation(world).secret_name)

    assert code == EXIT_FAILED, output  # the latest rotation failed
    failed_at = output.index("✗ ")
    finished_at = output.index("✓ ")
    assert failed_at < finished_at  # newest first
    assert "rotation failed in" in output
    assert "setSecret failed: " in output
    assert "Fix: " in output
    assert "rotation finished in" in output
    assert "key AKIA" in output
    assert_no_secret(output, world)


def test_json_carries_each_rotation_with_numbers_as_numbers(world, capsys):
    code, output = rotate(world, capsys)
    assert code == EXIT_OK, output
    new_key = json.loads(
        world.client("secretsmanager").get_secret_value(
            SecretId=installation(world).secret_arn, VersionStage="AWSCURRENT"
        )["SecretString"]
    )["username"]

    code, output = run_cli(capsys, "history", installation(world).secret_name, "--json")

    assert code == EXIT_OK, output
    document = json.loads(output)
    latest = document["rotations"][0]
    assert latest["kind"] == "rotation"
    assert latest["outcome"] == "finished"
    assert latest["failed_step"] is None
    assert isinstance(latest["duration_seconds"], float)
    assert new_key in [key["id"] for key in latest["keys"]]
    assert document["log_groups"]


def test_all_lists_every_installation(world, capsys):
    code, output = run_cli(capsys, "history", "--all", "--json")
    assert code in (EXIT_OK, EXIT_FAILED), output
    [history] = json.loads(output)
    assert history["secret_arn"] == installation(world).secret_arn


def test_an_installation_or_all_is_required(world, capsys):
    try:
        code, output = run_cli(capsys, "history")
    except SystemExit as exit:
        code, output = int(exit.code or 0), capsys.readouterr().err
    assert code == EXIT_USAGE
    assert "name one INSTALLATION, or pass --all" in output
