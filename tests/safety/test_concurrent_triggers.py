"""Concurrent triggers: the schedule and an operator (console or ``ses-smtp-rotator rotate``)
asking for a rotation at the same moment, or while one is pending.

Secrets Manager lets one rotation of a secret run at a time: a second RotateSecret while
AWSPENDING sits apart from AWSCURRENT is refused, and a retry of the pending rotation reuses its
token. The local rotation service refuses the same way; the command line must say so in plain
words. Late invocations of a rotation that was abandoned must change nothing.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.secretsmanager.models import secretsmanager_backends
from safety_figures import CONCURRENT
from safety_harness import STEADY, SafetyRun, abandon
from secret_scan import OutputCapture

from ses_smtp_rotator.cli.aws_access import AwsAccess
from ses_smtp_rotator.cli.commands import rotate as rotate_command
from ses_smtp_rotator.cli.exit_codes import EXIT_IN_PROGRESS
from ses_smtp_rotator.functions import errors
from ses_smtp_rotator.local.rotation_service import STEPS, RotationInProgressError

FUNCTION = "ses-smtp-rotator"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:{DEFAULT_ACCOUNT_ID}:function:{FUNCTION}"
LOG_GROUP = f"/aws/lambda/{FUNCTION}"


def new_keys_created(run: SafetyRun) -> int:
    return sum(1 for site in run.injector.recorded if site.call == "iam.CreateAccessKey")


def attach_rotation_function(run: SafetyRun) -> None:
    """Mark the secret as rotated by the function, as the stack does (RotationLambdaARN)."""
    backend = secretsmanager_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    secret = backend.describe_secret(run.world.secret_id)
    secret.rotation_lambda_arn, secret.rotation_enabled = FUNCTION_ARN, True
    secret.rotation_requested, secret.auto_rotate_after_days = True, 30


def ship_function_logs(outputs: OutputCapture) -> None:
    """Put the function's JSON log lines so far into its log group, as Lambda would."""
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName=LOG_GROUP)
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName="local")
    lines = [text for where, text in outputs.texts if where == "log (Powertools JSON)"]
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName="local",
        logEvents=[{"timestamp": now, "message": line} for line in lines],
    )


def operator_rotates(run: SafetyRun) -> tuple[int, str]:
    """``ses-smtp-rotator rotate SECRET``; returns its exit code and what it printed."""
    printed = io.StringIO()
    code = rotate_command.rotate(
        AwsAccess(boto3.Session(), "us-east-1"), run.world.secret_id, wait=False, out=printed
    )
    return code, printed.getvalue()


def test_schedule_and_console_at_the_same_moment_run_one_rotation(
    make_run: Callable[[str], SafetyRun],
    outputs: OutputCapture,
    record_property: Callable[[str, object], None],
) -> None:
    """Both RotateSecret calls arrive before the first rotation's first step: the second is
    refused, the command line says so, and one rotation (one new key) runs to the end."""
    run = make_run(STEADY)
    attach_rotation_function(run)
    scheduled = run.world.start()

    with pytest.raises(RotationInProgressError, match="isn't complete"):
        run.world.start()
    code, printed = operator_rotates(run)

    assert code == EXIT_IN_PROGRESS
    assert "A rotation of kion0/ses-smtp-credential is already in progress" in printed
    assert f"version {scheduled} is AWSPENDING" in printed
    # A rotation the function may still be working on is never offered to be given up.
    assert f"--remove-from-version-id {scheduled}" not in printed
    assert "Wait for it to finish" in printed
    outputs.add("command line", printed)
    assert run.run(scheduled) is None
    assert new_keys_created(run) == 1
    run.assert_converged()
    record_property(CONCURRENT, "schedule-and-console-together")


def test_a_rotation_asked_for_while_one_is_pending_is_refused_with_its_last_error(
    make_run: Callable[[str], SafetyRun],
    outputs: OutputCapture,
    record_property: Callable[[str, object], None],
) -> None:
    """The pending rotation already switched Kion, then failed; a console rotation is refused,
    the command line names the failure and its fix, and the retry of the pending one finishes."""
    run = make_run(STEADY)
    attach_rotation_function(run)
    pending = run.world.start()
    assert run.run(pending, STEPS[:2]) is None
    run.world.kion.fail_requests(403, count=None)
    failure = run.invoke("testSecret", pending)
    assert failure is not None
    ship_function_logs(outputs)

    with pytest.raises(RotationInProgressError):
        run.world.start()
    code, printed = operator_rotates(run)

    assert code == EXIT_IN_PROGRESS
    assert f"version {pending} is AWSPENDING" in printed
    assert "Its last attempt failed in testSecret" in printed
    assert f"Fix: {failure.error.fix}" in printed
    outputs.add("command line", printed)
    run.world.kion.clear_faults()
    assert run.continue_after(failure, "retry-rotation") is None
    assert new_keys_created(run) == 1
    run.assert_converged()
    record_property(CONCURRENT, "rotation-while-pending")


def test_the_schedule_firing_for_a_pending_rotation_joins_it(
    make_run: Callable[[str], SafetyRun],
    record_property: Callable[[str, object], None],
) -> None:
    """Secrets Manager's retry of a failed rotation carries its token: it joins, and the key
    the failed attempt created is the one the rotation finishes with."""
    run = make_run(STEADY)
    token = run.world.start()
    assert run.run(token, STEPS[:1]) is None
    new_key = json.loads(
        run.world.secretsmanager.get_secret_value(SecretId=run.world.secret_id, VersionId=token)[
            "SecretString"
        ]
    )["username"]

    assert run.world.start(token) == token
    assert run.run(token) is None

    assert new_keys_created(run) == 1
    assert run.world.current()["username"] == new_key
    run.assert_converged()
    record_property(CONCURRENT, "retry-joins-pending")


@pytest.mark.parametrize("late_step", STEPS[1:])
def test_a_late_step_of_an_abandoned_rotation_changes_nothing(
    late_step: str,
    make_run: Callable[[str], SafetyRun],
    record_property: Callable[[str, object], None],
) -> None:
    """An operator abandons a rotation and starts another; an invocation of the first one that
    was still queued arrives afterwards. It is refused and touches neither Kion nor the keys."""
    run = make_run(STEADY)
    first = run.world.start()
    assert run.run(first, STEPS[:1]) is None
    abandon(run.world)
    second = run.world.start()
    assert run.run(second, STEPS[:2]) is None
    kion_before, keys_before = run.world.kion_credential(), run.world.access_key_ids()

    failure = run.invoke(late_step, first)

    assert failure is not None
    assert type(failure.error) is errors.RotationStateError
    assert "Another rotation replaced this one" in failure.error.fix
    assert (run.world.kion_credential(), run.world.access_key_ids()) == (kion_before, keys_before)
    assert run.run(second, STEPS[2:]) is None
    run.assert_converged()
    record_property(CONCURRENT, f"late-{late_step}-of-abandoned-rotation")
