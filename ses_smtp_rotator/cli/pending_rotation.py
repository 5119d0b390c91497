"""An unfinished rotation (AWSPENDING apart from AWSCURRENT): is the function still working on it,
did it fail, or has it been left alone for longer than the function can run?

Giving a rotation up (taking AWSPENDING off its version) is only safe once no invocation of the
function can still be working on it, so the command to do so is offered only when the function has
not touched the rotation for longer than its timeout. The function's last activity comes from its
log records about the rotation's token; without them, from the pending version's age.

:func:`assess_pending` reads; ``functions.watch.health.classify`` decides, as it does for the daily
watch (which knows only the pending version's age).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ses_smtp_rotator.cli.aws_access import AwsAccess, SetupError
from ses_smtp_rotator.cli.function_logs import FunctionLogReader, FunctionLogRecord
from ses_smtp_rotator.cli.rotation_function import DEFAULT_TIMEOUT, RotationFunction
from ses_smtp_rotator.cli.secret_state import SecretState, abandon_command, version_created
from ses_smtp_rotator.functions.quiet_period import quiet_from
from ses_smtp_rotator.functions.watch.health import FAILED, PendingActivity, classify

# Log records carry the function's clock; read from a little before the version was made.
_CLOCK_SLACK = timedelta(minutes=5)
_UNKNOWN_START_LOOKBACK = timedelta(days=1)


@dataclass
class PendingRotation:
    """One unfinished rotation, as far as Secrets Manager and the function's log tell."""

    version_id: str
    state: str
    """``running`` (touched within the timeout, no error since), ``failed`` (its last record is an
    error) or ``stuck`` (not touched for longer than the timeout)."""
    started: datetime | None
    last_activity: datetime | None
    activity_source: str
    """``the function's log`` or ``the pending version's age``."""
    function_timeout_seconds: float
    function_timeout: str
    """The timeout and where it comes from, in words."""
    may_abandon: bool
    """True once the function has left the rotation alone for its quiet period (timeout plus
    GRACE): the moment a new rotation may also delete the key this one made."""
    abandon_after: datetime | None
    access_key_id: str | None = None
    last_error_step: str | None = None
    last_error: str | None = None
    last_error_fix: str | None = None
    abandon_command: str | None = None
    logs_unavailable: str | None = None

    def idle_for(self, now: datetime) -> timedelta | None:
        return now - self.last_activity if self.last_activity else None

    @property
    def activity(self) -> PendingActivity:
        """What the health checks judge the rotation by."""
        return PendingActivity(
            self.last_activity,
            self.activity_source,
            self.last_error_step,
            self.last_error if self.state == FAILED else None,
            self.last_error_fix,
        )


def assess_pending(
    aws: AwsAccess,
    secretsmanager: Any,
    state: SecretState,
    version_id: str,
    function: RotationFunction | None,
    *,
    now: datetime | None = None,
) -> PendingRotation:
    """Read what is known about the unfinished rotation to ``version_id`` and classify it.

    Needs secretsmanager:ListSecretVersionIds; GetSecretValue on the pending version (its key
    and creation time) and logs:FilterLogEvents (the function's activity) add detail when allowed.
    """
    now = now or datetime.now(UTC)
    created, access_key_id = _pending_value(secretsmanager, state, version_id)
    started = created or _version_created(secretsmanager, state, version_id)
    records: list[FunctionLogRecord] = []
    logs_unavailable = None
    if function is not None:
        reader = FunctionLogReader(aws, function)
        since = (started - _CLOCK_SLACK) if started else now - _UNKNOWN_START_LOOKBACK
        records = reader.new_records(version_id, since)
        logs_unavailable = reader.unavailable
    timeout = function.timeout if function else DEFAULT_TIMEOUT
    if records:
        last_activity, source = records[-1].at, "the function's log"
    else:
        last_activity, source = started, "the pending version's age"
    last = records[-1] if records else None
    state_name, may_abandon = classify(
        last_activity=last_activity, failed=bool(last and last.failed), timeout=timeout, now=now
    )
    pending = PendingRotation(
        version_id=version_id,
        state=state_name,
        started=started,
        last_activity=last_activity,
        activity_source=source,
        function_timeout_seconds=timeout.total_seconds(),
        function_timeout=function.describe_timeout()
        if function
        else f"{DEFAULT_TIMEOUT.total_seconds():.0f} s (default)",
        may_abandon=may_abandon,
        abandon_after=quiet_from(last_activity, timeout) if last_activity else None,
        access_key_id=access_key_id,
        abandon_command=abandon_command(state) if may_abandon else None,
        logs_unavailable=logs_unavailable,
    )
    if last is not None and last.failed:
        pending.last_error_step = last.step or None
        pending.last_error = last.message
        pending.last_error_fix = last.fix
    return pending


def give_up_advice(pending: PendingRotation, secret_name: str, now: datetime) -> str:
    """What to do about a rotation that has not finished: wait for it, or give it up."""
    if pending.may_abandon and pending.abandon_command:
        idle = pending.idle_for(now)
        quiet = f"{idle.total_seconds():.0f} s" if idle else "a while"
        return (
            f"The function has not touched it for {quiet} ({pending.activity_source}), longer "
            f"than its timeout of {pending.function_timeout}, so no invocation is still working "
            f"on it. Give it up with\n    {pending.abandon_command}\n  and rotate again "
            f"(ses-smtp-rotator rotate {secret_name} --wait)."
        )
    when = (
        f" after {pending.abandon_after.astimezone(UTC):%H:%M:%S} UTC"
        if pending.abandon_after
        else ""
    )
    return (
        f"The function may still be working on it (timeout {pending.function_timeout}): follow "
        f"it with `ses-smtp-rotator rotate {secret_name} --wait`. Do not give it up yet; if it "
        f"is still unfinished{when}, `ses-smtp-rotator status {secret_name}` shows the command "
        "to give it up."
    )


def _version_created(secretsmanager: Any, state: SecretState, version_id: str) -> datetime | None:
    try:
        return version_created(secretsmanager, state.arn, version_id)
    except SetupError:
        return None


def _pending_value(
    secretsmanager: Any, state: SecretState, version_id: str
) -> tuple[datetime | None, str | None]:
    """The pending version's creation time and access key id, when it has a value and may be
    read; (None, None) otherwise."""
    try:
        value = secretsmanager.get_secret_value(SecretId=state.arn, VersionId=version_id)
    except (ClientError, BotoCoreError):
        return None, None
    created = value.get("CreatedDate")
    if isinstance(created, datetime) and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    try:
        fields = json.loads(value.get("SecretString") or "{}")
    except ValueError:
        fields = {}
    key = fields.get("username") if isinstance(fields, dict) else None
    return (created if isinstance(created, datetime) else None), (key or None)
