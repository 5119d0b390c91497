"""``ses-smtp-rotator history``: past rotations from the function's own log records."""

from __future__ import annotations

import json

from cli_world import assert_no_secret, installation, run_cli, settle

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


def rotate_twice_and_roll_back(world, capsys) -> tuple[str, str]:
    """A rotation, its replaced key gone (time passed), a second rotation, and a rollback to
    the first one's key. Returns (the key rolled back to, the key rolled back from)."""
    code, output = rotate(world, capsys)
    assert code == EXIT_OK, output
    settle(world)  # the watch deletes the adopted key after its window
    code, output = run_cli(
        capsys, "rotate", installation(world).secret_arn, "--wait", "--end-rollback-window", *FAST
    )
    assert code == EXIT_OK, output
    world.hook.wait_idle(timeout=30)
    previous, rolled_back_from = current_keys(world)
    code, output = run_cli(capsys, "rollback", installation(world).secret_name, "--yes")
    assert code == EXIT_OK, output
    return previous, rolled_back_from


def current_keys(world) -> tuple[str, str]:
    """(AWSPREVIOUS's key, AWSCURRENT's key)."""
    secretsmanager = world.client("secretsmanager")
    return tuple(  # type: ignore[return-value]
        json.loads(
            secretsmanager.get_secret_value(
                SecretId=installation(world).secret_arn, VersionStage=stage
            )["SecretString"]
        )["username"]
        for stage in ("AWSPREVIOUS", "AWSCURRENT")
    )


def test_a_rollback_is_listed_with_its_keys_and_every_outcome_event(world, capsys):
    restored, retired = rotate_twice_and_roll_back(world, capsys)

    code, output = run_cli(capsys, "history", installation(world).secret_name)

    assert code == EXIT_OK, output
    rollback_at = output.index("rollback finished in")
    assert rollback_at < output.index("rotation finished in")  # the newest first
    assert f"key {restored}: Rolling back to the previous key" in output
    assert f"key {retired}: Rolling back to the previous key (replaced)" in output
    assert "outcome event: rolled-back (logged only: no event bus is set)" in output
    assert "outcome event: succeeded (logged only: no event bus is set)" in output
    assert_no_secret(output, world)

    code, output = run_cli(capsys, "history", installation(world).secret_name, "--json")

    latest = json.loads(output)["rotations"][0]
    assert latest["kind"] == "rollback"
    assert latest["outcome"] == "finished"
    assert latest["version"] is None
    assert latest["function_request_id"]
    assert latest["outcome_events"] == [{"outcome": "rolled-back", "event_bus": None}]
    assert {key["id"] for key in latest["keys"]} == {restored, retired}


def test_a_refused_rollback_is_listed_with_its_cause_and_fix_and_does_not_fail(world, capsys):
    code, output = rotate(world, capsys)
    assert code == EXIT_OK, output
    settle(world)  # the key the rotation replaced is deleted: nothing to go back to
    code, output = run_cli(capsys, "rollback", installation(world).secret_name, "--yes")
    assert code == EXIT_FAILED, output

    code, output = run_cli(capsys, "history", installation(world).secret_name)

    assert code == EXIT_OK, output  # the latest rotation finished; the refusal changed nothing
    refused = output[output.index("✗ ") :]
    assert "rollback failed in" in refused.splitlines()[0]
    assert "      refused: " in refused
    assert "Fix: " in refused
    assert "outcome event: rollback-refused" in refused
    assert_no_secret(output, world)


def test_a_failed_rotation_stays_failed_after_its_outcome_event(world, capsys):
    world.smtp.refuse_all = True
    code, output = rotate(world, capsys)
    assert code == EXIT_FAILED, output
    world.smtp.refuse_all = False

    code, output = run_cli(capsys, "history", installation(world).secret_name, "--json")

    assert code == EXIT_FAILED, output
    latest = json.loads(output)["rotations"][0]
    assert latest["outcome"] == "failed"
    assert latest["failed_step"] == "setSecret"
    assert {"outcome": "failed", "event_bus": None} in latest["outcome_events"]
