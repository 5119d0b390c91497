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
from typing import Any, TextIO

from botocore.exceptions import ClientError

from ses_smtp_rotator.cli.aws_access import AwsAccess, asking, open_aws, region_of_arn
from ses_smtp_rotator.cli.dry_run import dry_run
from ses_smtp_rotator.cli.exit_codes import (
    EXIT_FAILED,
    EXIT_IN_PROGRESS,
    EXIT_OK,
    EXIT_TIMEOUT,
    HelpFormatter,
    epilog_for,
)
from ses_smtp_rotator.cli.fleet import secret_id_for
from ses_smtp_rotator.cli.function_logs import FunctionLogReader, FunctionLogRecord
from ses_smtp_rotator.cli.pending_rotation import (
    PendingRotation,
    assess_pending,
    give_up_advice,
)
from ses_smtp_rotator.cli.rotation_function import RotationFunction, describe_function
from ses_smtp_rotator.cli.secret_state import (
    CURRENT,
    PENDING,
    SecretState,
    abandon_command,
    read_state,
    require_installation_secret,
)
from ses_smtp_rotator.cli.units import span
from ses_smtp_rotator.functions.quiet_period import is_quiet, quiet_from
from ses_smtp_rotator.functions.retired_keys import END_WINDOW_TAG, retired_keys

DEFAULT_TIMEOUT = 600.0
DEFAULT_POLL = 2.0
# How long after AWSCURRENT moved to keep reading for finishSecret's last records (CloudWatch
# Logs can deliver them some seconds after the label moved); reading stops as soon as they come.
_FINISH_GRACE = 10.0
# When to say the rotation is still running: after this much silence, then at this interval.
_FIRST_NOTE = 2.0
_LATER_NOTES = 10.0
# Log events carry the function's clock; read a little before the rotation started.
_CLOCK_SLACK = timedelta(seconds=30)
# Attaching to a rotation that runs: read its records from a little before its version was made.
_ATTACH_SLACK = timedelta(minutes=5)


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "rotate",
        parents=[common],
        help="start a rotation now (and follow it with --wait)",
        description="Start a rotation of an installation secret: the same RotateSecret call the "
        "schedule makes. With --wait, follow it step by step from the rotation function's logs "
        "until AWSCURRENT moves to the new version, or report why it failed; a rotation already "
        "in progress is followed instead. Several SECRETs, globs, --all or --deployment rotate "
        "each (--parallel at a time) and print one summary table. Needs "
        "secretsmanager:RotateSecret and lambda:InvokeFunction (and, for --wait, "
        "secretsmanager:DescribeSecret and logs:FilterLogEvents; ListSecrets to select several).",
        epilog=epilog_for("rotate"),
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--wait",
        action="store_true",
        help="follow the rotation until it finishes or fails; a rotation already in progress "
        "is followed instead of starting another",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the summary as JSON (also for one secret)"
    )
    parser.add_argument(
        "--end-rollback-window",
        action="store_true",
        help="let the rotation delete the key the last rotation deactivated, before its "
        "rollback window ends, when the IAM user has no room for a new key (gives up the way "
        "back to that key; needs secretsmanager:TagResource)",
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
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="change nothing: print what each installation's rotation would do (the key it "
        "makes, the key it retires, what it proves)",
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help="do not ask before rotating several installations (--all, --deployment, globs)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    aws = open_aws(args.secret[0], profile=args.profile, region=args.region)
    secret_id = secret_id_for(aws.client("secretsmanager"), args.secret[0])
    if args.dry_run:
        print(dry_run(aws, secret_id))
        return EXIT_OK
    return rotate(
        aws,
        secret_id,
        wait=args.wait,
        timeout=args.timeout,
        poll=args.poll,
        log_group=args.log_group,
        end_rollback_window=args.end_rollback_window,
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
    end_rollback_window: bool = False,
    pace: Callable[[], None] | None = None,
) -> int:
    """Start a rotation of ``secret_id`` and, with ``wait``, follow it; returns an exit code.
    ``pace`` is called right before RotateSecret (``rotate`` over several installations keeps
    to Secrets Manager's quota with it).

    When a rotation is already in progress, ``wait`` follows that one instead (it cannot be
    started twice), unless the function has left it alone for longer than its timeout."""
    out = out or sys.stdout
    secretsmanager = aws.client("secretsmanager")
    state = read_state(secretsmanager, secret_id)
    require_installation_secret(state)
    function = describe_function(
        aws.client("lambda", region_of_arn(state.function_arn or "")),
        state.function_arn or "",
        log_group=log_group,
    )
    if end_rollback_window:
        _end_rollback_window(secretsmanager, state, out)
    if state.pending_version:
        return _in_progress(aws, state, state.pending_version, function, wait, timeout, poll, out)
    if pace is not None:
        pace()
    started = datetime.now(UTC)
    try:
        with asking("secretsmanager:RotateSecret", f"secret {state.name}"):
            token = secretsmanager.rotate_secret(SecretId=state.arn)["VersionId"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "InvalidRequestException":
            pending = read_state(secretsmanager, state.arn).pending_version
            if pending:
                return _in_progress(aws, state, pending, function, wait, timeout, poll, out)
            print(f"Secrets Manager refused the rotation: {_message(error)}", file=out)
            return EXIT_FAILED
        raise
    print(f"Started a rotation of {state.name}: new version {token}", file=out)
    if not wait:
        print(
            f"Follow it with: ses-smtp-rotator rotate {state.name} --wait  (it attaches to the "
            "rotation in progress)",
            file=out,
        )
        return EXIT_OK
    follower = RotationFollower(aws, state, token, started, function=function, out=out)
    return follower.follow(timeout=timeout, poll=poll)


def _end_rollback_window(secretsmanager: Any, state: SecretState, out: TextIO) -> None:
    """Name the retired keys whose window the operator ends, in the one tag the rotation reads
    (createSecret deletes such a key only when it needs the room, every other condition still
    holding). Written before the rotation starts, so a retry of it sees the same permission."""
    retired = sorted(retired_keys(dict(state.tags)))
    if not retired:
        print(f"{state.name} has no retired key in a rollback window; rotating as usual.", file=out)
        return
    with asking("secretsmanager:TagResource", f"secret {state.name}"):
        secretsmanager.tag_resource(
            SecretId=state.arn, Tags=[{"Key": END_WINDOW_TAG, "Value": " ".join(retired)}]
        )
    print(
        f"Ended the rollback window of {', '.join(retired)}: the rotation may delete "
        f"{'it' if len(retired) == 1 else 'them'} to make room for the new key, and there is no "
        "way back once deleted.",
        file=out,
    )


def _in_progress(
    aws: AwsAccess,
    state: SecretState,
    version_id: str,
    function: RotationFunction,
    wait: bool,
    timeout: float,
    poll: float,
    out: TextIO,
) -> int:
    """A rotation is already pending: follow it (``wait``) or say where it stands.

    Exit 3 while the function may still be working on it, 1 once it has been left alone for
    longer than the function timeout (or, when followed, once it fails)."""
    now = datetime.now(UTC)
    pending = assess_pending(
        aws, aws.client("secretsmanager"), state, version_id, function, now=now
    )
    if wait and not pending.may_abandon:
        print(
            f"A rotation of {state.name} is already in progress (version {version_id}"
            f"{_since(pending, now)}): following it instead of starting another.",
            file=out,
        )
        follower = RotationFollower(
            aws,
            state,
            version_id,
            pending.started or now,
            function=function,
            out=out,
            read_from=(pending.started or now) - _ATTACH_SLACK,
        )
        return follower.follow(timeout=timeout, poll=poll)
    print(
        f"A rotation of {state.name} is already in progress: version {version_id} is AWSPENDING"
        f"{_since(pending, now)}.",
        file=out,
    )
    if pending.last_error:
        print(
            f"  Its last attempt failed in {pending.last_error_step or 'a step'}: "
            f"{pending.last_error}",
            file=out,
        )
        if pending.last_error_fix:
            print(f"  Fix: {pending.last_error_fix}", file=out)
    if pending.may_abandon:
        print(f"  {give_up_advice(pending, state.name, now)}", file=out)
        return EXIT_FAILED
    print(
        "  Wait for it to finish (Secrets Manager retries a failed rotation). "
        + give_up_advice(pending, state.name, now),
        file=out,
    )
    return EXIT_IN_PROGRESS


def _since(pending: PendingRotation, now: datetime) -> str:
    if pending.started is None:
        return ""
    return f", started {span(max(now - pending.started, timedelta()))} ago"


@dataclass
class RotationFollower:
    """Watches one rotation: the function's log records as they come, and the version labels."""

    aws: AwsAccess
    state: SecretState
    token: str
    started: datetime
    function: RotationFunction
    out: TextIO = field(default_factory=lambda: sys.stdout)
    read_from: datetime | None = None
    """Read the function's records from here (default: shortly before ``started``)."""
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self._secretsmanager = self.aws.client("secretsmanager")
        self._logs = FunctionLogReader(self.aws, self.function)
        self._since = self.read_from or self.started - _CLOCK_SLACK
        self._finished_logged = False
        self._last_step = ""
        self._last_activity = self.started

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
            if self._abandoned_by_function():
                return self._stuck()
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
            self._last_activity = max(self._last_activity, record.at)
        return records

    def _abandoned_by_function(self) -> bool:
        """True when the logs can be read and the function has not touched the rotation for
        longer than its timeout: no invocation can still be working on it."""
        if self._logs.unavailable:
            return False
        return is_quiet(self._last_activity, self.function.timeout, datetime.now(UTC))

    # -- outcomes -----------------------------------------------------------------------------

    def _succeeded(self, poll: float) -> int:
        deadline = self.clock() + _FINISH_GRACE
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
        give_up_at = quiet_from(failure.at, self.function.timeout)
        print(
            f"  Version {self.token} stays AWSPENDING and Secrets Manager retries the rotation: "
            f"`ses-smtp-rotator rotate {self.state.name} --wait` follows the retry. Fix the "
            f"cause; if the rotation is still unfinished after {give_up_at:%H:%M:%S} UTC (its "
            f"last attempt plus the function timeout, {self.function.describe_timeout()}), "
            f"`ses-smtp-rotator status {self.state.name}` shows the command to give it up.",
            file=self.out,
        )
        return EXIT_FAILED

    def _stuck(self) -> int:
        quiet = (datetime.now(UTC) - self._last_activity).total_seconds()
        print(
            f"✗ The function has not touched the rotation for {quiet:.0f} s, longer than its "
            f"timeout of {self.function.describe_timeout()}: no invocation is still working on "
            f"it. Give it up with\n    {abandon_command(self.state)}\n  and rotate "
            "again.",
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
