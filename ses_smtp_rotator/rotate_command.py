"""``ses-smtp-rotator rotate SECRET [--wait]``: start a rotation, the same ``RotateSecret`` the
schedule calls, and optionally follow it until ``AWSCURRENT`` moves or it fails."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TextIO

from botocore.exceptions import ClientError

from .aws_access import AwsAccess, SetupError, asking, open_aws
from .exit_codes import EPILOG, EXIT_FAILED, EXIT_IN_PROGRESS, EXIT_OK, EXIT_TIMEOUT, HelpFormatter
from .function_logs import FunctionLogReader, FunctionLogRecord
from .secret_state import CURRENT, PENDING, SecretState, abandon_command, read_state

DEFAULT_TIMEOUT = 600.0
DEFAULT_POLL = 2.0
# How long after AWSCURRENT moved to keep reading for finishSecret's last records.
_FINISH_GRACE = 3.0
# When to say the rotation is still running: after this much silence, then at this interval.
_FIRST_NOTE = 2.0
_LATER_NOTES = 10.0
# Log events carry the function's clock; read a little before the rotation started.
_CLOCK_SLACK = timedelta(seconds=30)


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "rotate",
        parents=[common],
        help="start a rotation now (and follow it with --wait)",
        description="Start a rotation of an installation secret: the same RotateSecret call the "
        "schedule makes. With --wait, follow it step by step from the rotation function's logs "
        "until AWSCURRENT moves to the new version, or report why it failed. Needs "
        "secretsmanager:RotateSecret and lambda:InvokeFunction (and, for --wait, "
        "secretsmanager:DescribeSecret and logs:FilterLogEvents).",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--wait", action="store_true", help="follow the rotation until it finishes or fails"
    )
    parser.add_argument(
        "--timeout",
        type=_positive,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="with --wait: give up after this long without progress "
        f"(default {DEFAULT_TIMEOUT:.0f})",
    )
    parser.add_argument(
        "--poll",
        type=_positive,
        default=DEFAULT_POLL,
        metavar="SECONDS",
        help="with --wait: seconds between looks at the secret and the logs "
        f"(default {DEFAULT_POLL:.0f})",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    aws = open_aws(args.secret, profile=args.profile, region=args.region)
    return rotate(
        aws,
        args.secret,
        wait=args.wait,
        timeout=args.timeout,
        poll=args.poll,
        log_group=args.log_group,
    )


def rotate(
    aws: AwsAccess,
    secret_id: str,
    *,
    wait: bool,
    timeout: float = DEFAULT_TIMEOUT,
    poll: float = DEFAULT_POLL,
    log_group: str | None = None,
    out: TextIO | None = None,
) -> int:
    """Start a rotation of ``secret_id`` and, with ``wait``, follow it; returns an exit code."""
    out = out or sys.stdout
    secretsmanager = aws.client("secretsmanager")
    state = read_state(secretsmanager, secret_id)
    if not state.function_arn:
        raise SetupError(
            f"Secret {state.name} has no rotation function attached, so RotateSecret cannot "
            "rotate it.",
            "Deploy the stack with this installation in cdk.json (it attaches the rotation "
            "function), or check that SECRET names the installation secret, not the Kion API "
            "key secret.",
        )
    if state.pending_version:
        return _report_in_progress(aws, state, state.pending_version, log_group, out)
    started = datetime.now(UTC)
    try:
        with asking("secretsmanager:RotateSecret", f"secret {state.name}"):
            token = secretsmanager.rotate_secret(SecretId=state.arn)["VersionId"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "InvalidRequestException":
            pending = read_state(secretsmanager, state.arn).pending_version
            if pending:
                return _report_in_progress(aws, state, pending, log_group, out)
            print(f"Secrets Manager refused the rotation: {_message(error)}", file=out)
            return EXIT_FAILED
        raise
    print(f"Started a rotation of {state.name}: new version {token}", file=out)
    if not wait:
        print(
            f"Follow it with: ses-smtp-rotator status {state.name}  (or rotate --wait next time)",
            file=out,
        )
        return EXIT_OK
    follower = RotationFollower(aws, state, token, started, log_group=log_group, out=out)
    return follower.follow(timeout=timeout, poll=poll)


@dataclass
class RotationFollower:
    """Watches one rotation: the function's log records as they come, and the version labels."""

    aws: AwsAccess
    state: SecretState
    token: str
    started: datetime
    log_group: str | None = None
    out: TextIO = field(default_factory=lambda: sys.stdout)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self._secretsmanager = self.aws.client("secretsmanager")
        self._logs = FunctionLogReader(
            self.aws, self.state.function_arn or "", log_group=self.log_group
        )
        self._since = self.started - _CLOCK_SLACK
        self._finished_logged = False
        self._last_step = ""

    def follow(self, *, timeout: float, poll: float) -> int:
        """Print progress until AWSCURRENT moves (EXIT_OK), the function reports an error
        (EXIT_FAILED) or nothing happens for ``timeout`` seconds (EXIT_TIMEOUT)."""
        last_progress = last_output = self.clock()
        quiet_for = _FIRST_NOTE
        labels: tuple[str, ...] = (PENDING,)
        while True:
            records = self._read_records()
            if records:
                last_progress = last_output = self.clock()
                quiet_for = _FIRST_NOTE
            failure = next((record for record in records if record.failed), None)
            if failure is not None:
                return self._failed(failure)
            now_labels = tuple(sorted(self._labels()))
            if now_labels != labels:
                labels, last_progress = now_labels, self.clock()
            if CURRENT in labels:
                return self._succeeded(poll)
            if PENDING not in labels:
                return self._replaced(labels)
            now = self.clock()
            if now - last_progress >= timeout:
                return self._timed_out(timeout)
            if now - last_output >= max(quiet_for, poll * 1.5):
                self._line(self._elapsed(), "…", self._waiting_for())
                last_output, quiet_for = now, _LATER_NOTES
            self.sleep(poll)

    # -- reading ------------------------------------------------------------------------------

    def _labels(self) -> list[str]:
        with asking("secretsmanager:DescribeSecret", f"secret {self.state.name}"):
            described = self._secretsmanager.describe_secret(SecretId=self.state.arn)
        return list(described.get("VersionIdsToStages", {}).get(self.token, []))

    def _read_records(self) -> list[FunctionLogRecord]:
        note_missing = self._logs.unavailable is None
        records = self._logs.new_records(self.token, self._since)
        if note_missing and self._logs.unavailable:
            print(
                f"  (the function's logs cannot be read: {self._logs.unavailable}; following the "
                "secret's labels only)",
                file=self.out,
            )
        for record in records:
            elapsed = (record.at - self.started).total_seconds()
            details = "".join(f" · {_detail(name, value)}" for name, value in record.details)
            self._line(elapsed, record.step or "-", record.message + details)
            if record.step == "finishSecret" and record.message == "Step finished":
                self._finished_logged = True
            self._last_step = record.step
        return records

    # -- outcomes -----------------------------------------------------------------------------

    def _succeeded(self, poll: float) -> int:
        deadline = self.clock() + min(_FINISH_GRACE, max(poll, 0.5) * 2)
        while not self._finished_logged and not self._logs.unavailable:
            if self.clock() >= deadline:
                break
            self.sleep(min(poll, 0.25))
            self._read_records()
        key = self._current_key_id()
        print(
            f"✓ Rotation finished in {self._elapsed():.1f} s: AWSCURRENT is now version "
            f"{self.token}" + (f" (access key {key})" if key else ""),
            file=self.out,
        )
        return EXIT_OK

    def _failed(self, failure: FunctionLogRecord) -> int:
        print(
            f"✗ The rotation failed in {failure.step or 'a step'}"
            f"{f' ({failure.error})' if failure.error else ''}: {failure.message}",
            file=self.out,
        )
        if failure.fix:
            print(f"  Fix: {failure.fix}", file=self.out)
        print(
            f"  Version {self.token} stays AWSPENDING: Secrets Manager retries the rotation, or "
            f"abandon it with\n    {abandon_command(self.state, self.token)}\n  and start again "
            f"once the cause is fixed. `ses-smtp-rotator status {self.state.name}` shows where it "
            "stands.",
            file=self.out,
        )
        return EXIT_FAILED

    def _replaced(self, labels: tuple[str, ...]) -> int:
        print(
            f"✗ Version {self.token} is no longer AWSPENDING "
            f"({', '.join(labels) or 'no labels'}): the rotation was abandoned or replaced by "
            "another one.",
            file=self.out,
        )
        return EXIT_FAILED

    def _timed_out(self, timeout: float) -> int:
        print(
            f"… Gave up waiting after {timeout:.0f} s without progress. The rotation may still be "
            f"running: check again with `ses-smtp-rotator status {self.state.name}`.",
            file=self.out,
        )
        return EXIT_TIMEOUT

    def _current_key_id(self) -> str | None:
        """The new access key id (GetSecretValue), or None when it may not be read."""
        try:
            value = self._secretsmanager.get_secret_value(
                SecretId=self.state.arn, VersionId=self.token
            )
        except Exception:
            return None
        try:
            return json.loads(value.get("SecretString") or "{}").get("username") or None
        except ValueError:
            return None

    def _waiting_for(self) -> str:
        if self._last_step == "createSecret":
            return "setSecret is waiting for SES to accept the new key (it can take a while)"
        return "still running; nothing new from the function yet"

    def _elapsed(self) -> float:
        return (datetime.now(UTC) - self.started).total_seconds()

    def _line(self, elapsed: float, step: str, text: str) -> None:
        stamp = f"+{max(elapsed, 0.0):.1f}s"
        print(f"  {stamp:>7}  {step:<13} {text}", file=self.out, flush=True)


def _report_in_progress(
    aws: AwsAccess, state: SecretState, pending: str, log_group: str | None, out: TextIO
) -> int:
    print(
        f"A rotation of {state.name} is already in progress: version {pending} is AWSPENDING.",
        file=out,
    )
    if state.function_arn:
        reader = FunctionLogReader(aws, state.function_arn, log_group=log_group)
        failure = reader.last_error(pending, datetime.now(UTC) - timedelta(days=14))
        if failure is not None:
            print(
                f"  Its last attempt failed in {failure.step or 'a step'}: {failure.message}",
                file=out,
            )
            if failure.fix:
                print(f"  Fix: {failure.fix}", file=out)
    print(
        "  Wait for it to finish (Secrets Manager retries a failed rotation), or abandon it "
        f"with\n    {abandon_command(state, pending)}\n  and rotate again.",
        file=out,
    )
    return EXIT_IN_PROGRESS


def _detail(name: str, value: str) -> str:
    return f"{value} SMTP logins" if name == "logins" else value


def _message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", "")) or str(error)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value
