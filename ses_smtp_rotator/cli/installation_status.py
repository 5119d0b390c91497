"""Where an installation's SMTP credential stands: the current key and its age, the rotation
history and schedule, and the daily watch's checks (Kion's side, the access key, SES, the last
rotation, the Kion API key's life, any unfinished rotation).

The checks are the watch's own code (``functions.watch.health``), so status and the watch never
disagree. Nothing here returns a password or key: only access key ids, which are SMTP user names.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ses_smtp_rotator.cli.aws_access import AwsAccess, asking, region_of_arn, user_elsewhere
from ses_smtp_rotator.cli.pending_rotation import PendingRotation, assess_pending, give_up_advice
from ses_smtp_rotator.cli.rotation_function import RotationFunction, describe_function
from ses_smtp_rotator.cli.rotation_history import (
    ROLLBACK,
    ROTATION,
    UNFINISHED,
    past_rotations,
)
from ses_smtp_rotator.cli.secret_state import (
    CURRENT,
    SecretState,
    looks_like_kion_api_key,
    read_state,
    require_installation_secret,
    wrong_kind_error,
)
from ses_smtp_rotator.cli.units import span
from ses_smtp_rotator.cli.watch_query import ask_watch, watch_function
from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.errors import RotationError
from ses_smtp_rotator.functions.installation_secret import InstallationSecret
from ses_smtp_rotator.functions.kion_key_renewal.key_life import renew_after_from_environment
from ses_smtp_rotator.functions.services.iam_keys import UserAccessKeys
from ses_smtp_rotator.functions.watch.health import (
    RUNNING,
    HealthCheck,
    HealthLimits,
    pending_finding,
)
from ses_smtp_rotator.schedule import RotationScheduleInfo, next_rotation

_CHECK_TIMEOUT = 10.0

# What status concludes, best to worst; a monitor treats "ok" and "in_progress" as healthy.
OK = "ok"
IN_PROGRESS = "in_progress"
UNCHECKED = "unchecked"
FAILING = "failing"


@dataclass
class Check:
    """One yes/no finding. ``ok`` is None when it could not be checked."""

    ok: bool | None
    summary: str
    fix: str | None = None


@dataclass
class AccessKeyInfo:
    access_key_id: str
    created: datetime | None
    active: bool
    role: str  # "current", "pending", "kion", "retired", "unused"


@dataclass
class InstallationStatus:
    secret_arn: str
    secret_name: str
    current_version: str | None
    access_key_id: str | None = None
    key_created: datetime | None = None
    iam_user_name: str | None = None
    access_keys: list[AccessKeyInfo] = field(default_factory=list)
    rotation_function: str | None = None
    rotation_enabled: bool = False
    last_rotated: datetime | None = None
    next_rotation: datetime | None = None
    schedule: str | None = None
    kion_url: str | None = None
    kion_username: str | None = None
    kion_api_key_days_left: float | None = None
    kion_checked_by: str | None = None
    """The watch function that checked Kion's side; None when this machine asked Kion itself."""
    function_timeout: str | None = None
    """The timeout and where it comes from, in words."""
    function_timeout_seconds: float | None = None
    pending: PendingRotation | None = None
    current_key_last_used: str | None = None
    """IAM's last-used record of the AWSCURRENT key: the last signed AWS request, which AWS does
    not say SES SMTP updates; information, never evidence."""
    retired_keys: list[dict[str, Any]] = field(default_factory=list)
    """The deactivated keys (``HealthCheck``): origin, deactivation, deletion date, last use
    before deactivation."""
    checks: dict[str, Check] = field(default_factory=dict)

    @property
    def key_age(self) -> timedelta | None:
        return datetime.now(UTC) - self.key_created if self.key_created else None

    @property
    def problems(self) -> list[str]:
        return [name for name, check in self.checks.items() if check.ok is False]

    @property
    def unchecked(self) -> list[str]:
        return [name for name, check in self.checks.items() if check.ok is None]

    @property
    def in_progress(self) -> bool:
        return self.pending is not None and self.pending.state == RUNNING

    @property
    def verdict(self) -> str:
        """``failing`` when a rotation would fail now (or one failed or is stuck), else
        ``unchecked`` when a check could not be made, else ``in_progress`` or ``ok``."""
        if self.problems:
            return FAILING
        if self.unchecked:
            return UNCHECKED
        return IN_PROGRESS if self.in_progress else OK

    def to_document(self) -> dict[str, Any]:
        """The report as JSON-ready values (datetimes stay datetimes)."""
        document = asdict(self)
        document["key_age_days"] = (
            round(self.key_age.total_seconds() / 86400, 3) if self.key_age else None
        )
        document["problems"] = self.problems
        document["unchecked"] = self.unchecked
        document["in_progress"] = self.in_progress
        document["verdict"] = self.verdict
        return document

    def to_json(self) -> str:
        def encode(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.isoformat()
            raise TypeError(type(value).__name__)

        return json.dumps(self.to_document(), default=encode, indent=2)


def gather(
    aws: AwsAccess,
    secret_id: str,
    *,
    check_smtp: bool,
    use_watch: bool = True,
    log_group: str | None = None,
    now: datetime | None = None,
) -> InstallationStatus:
    """Read everything ``status`` reports; print nothing.

    The checks are the daily watch's own (``HealthCheck``): asked of the deployed watch when
    there is one (and ``use_watch``), else run here. This machine adds what only it reads: the
    IAM keys' roles, the schedule, and the function's log about an unfinished rotation. Raises
    SetupError when the secret cannot be read or is not an installation secret.
    """
    now = now or datetime.now(UTC)
    secretsmanager = aws.client("secretsmanager")
    state = read_state(secretsmanager, secret_id)
    require_installation_secret(state)
    status = InstallationStatus(
        secret_arn=state.arn,
        secret_name=state.name,
        current_version=state.current_version,
        rotation_function=state.function_arn,
        rotation_enabled=state.rotation_enabled,
        last_rotated=state.last_rotated,
        next_rotation=state.next_rotation,
    )
    current = _read_current(secretsmanager, state, status)
    if current is None:
        return status
    status.access_key_id = current.username or None
    status.iam_user_name = current.iam_user_name
    status.kion_url = current.kion_url
    schedule = _schedule(aws, state, status)
    function = describe_function(
        aws.client("lambda", region_of_arn(state.function_arn or "")),
        state.function_arn or "",
        log_group=log_group,
    )
    status.function_timeout = function.describe_timeout()
    status.function_timeout_seconds = function.timeout.total_seconds()
    watch = watch_function(function.watch_function) if use_watch else None
    if watch:
        _take_findings(status, _asked_of_watch(aws, watch, state.arn, status))
    else:
        health = HealthCheck(
            _limits(function, schedule),
            _CHECK_CONFIG,
            secretsmanager=secretsmanager,
            iam=aws.client("iam"),
            check_ses=check_smtp,
        ).check(state.arn, now=now)
        _take_findings(status, health.to_document())
        _note_where_checked(status)
    elsewhere = user_elsewhere(current.ses_account, state.arn)
    if elsewhere and not watch:
        status.checks["access_key"] = Check(
            None,
            f"the IAM user is in account {elsewhere}, which only the deployment's functions "
            "reach (through the access role); not asked from here",
            f"Run ses-smtp-rotator status {state.name} without --no-watch: the watch function "
            "checks the keys there.",
        )
    pending = _pending(aws, secretsmanager, state, status, function, now)
    _rollback(aws, state, status, function, now)
    if not elsewhere:  # the keys of a user in another account are the watch's to judge
        _list_keys(aws, current, status, pending)
    return status


# Kion and SES asked from this machine: short timeouts, one retry.
_CHECK_CONFIG = RotationConfig(
    smtp_timeout=_CHECK_TIMEOUT, kion_timeout=_CHECK_TIMEOUT, kion_retries=1, kion_retry_backoff=0.2
)


def _limits(function: RotationFunction, schedule: RotationScheduleInfo | None) -> HealthLimits:
    """The watch's limits, worked out as the stack works them out for the watch: the function's
    timeout, the schedule's longest gap plus a margin, and the Kion key renewal defaults."""
    return HealthLimits(
        function.timeout,
        schedule.rotation_max_age if schedule else None,
        renew_after_from_environment({}),
    )


def _read_current(
    secretsmanager: Any, state: SecretState, status: InstallationStatus
) -> InstallationSecret | None:
    with asking("secretsmanager:GetSecretValue", f"secret {state.name}"):
        value = secretsmanager.get_secret_value(SecretId=state.arn, VersionStage="AWSCURRENT")
    secret_string = value.get("SecretString")
    try:
        return InstallationSecret.parse(secret_string)
    except RotationError as error:
        if looks_like_kion_api_key(secret_string):
            raise wrong_kind_error(state) from None
        status.checks["secret"] = Check(False, error.cause, error.fix)
        return None


def _schedule(
    aws: AwsAccess, state: SecretState, status: InstallationStatus
) -> RotationScheduleInfo | None:
    """The EventBridge schedule that rotates the secret, when one does."""
    if status.next_rotation:  # Secrets Manager's own rotation rules
        return None
    schedule, unknown = next_rotation(aws.client("scheduler"), state.arn, state.name)
    if schedule is not None:
        status.next_rotation = schedule.next_run
        status.schedule = schedule.describe()
    else:
        status.schedule = f"unknown ({unknown})" if unknown else "no schedule calls RotateSecret"
    return schedule


def _asked_of_watch(
    aws: AwsAccess, watch: str, secret_arn: str, status: InstallationStatus
) -> dict[str, Any]:
    """The watch's findings for the installation, checked where the rotation runs, with no need
    to read the Kion API key here; a watch that cannot be asked leaves Kion unchecked."""
    answer = ask_watch(aws, watch, secret_arn)
    status.kion_checked_by = answer.function
    if answer.document is not None:
        return answer.document
    problem = {"ok": None, "summary": f"could not ask the watch {watch}: {answer.problem}"}
    return {"checks": {"kion": {**problem, "fix": answer.fix}}}


def _take_findings(status: InstallationStatus, document: dict[str, Any]) -> None:
    """Copy the health checks' findings (as the watch returns them) into the status. The
    pending rotation is judged again with the function's log (see :func:`_pending`)."""
    for name, finding in document.get("checks", {}).items():
        if isinstance(finding, dict) and name != "pending":
            status.checks[name] = Check(finding.get("ok"), finding["summary"], finding.get("fix"))
    days_left = document.get("kion_api_key_days_left")
    status.kion_api_key_days_left = days_left if isinstance(days_left, int | float) else None
    last_used = document.get("current_key_last_used")
    status.current_key_last_used = last_used if isinstance(last_used, str) else None
    retired = document.get("retired_keys")
    status.retired_keys = [entry for entry in retired or [] if isinstance(entry, dict)]
    username = document.get("kion_username")
    status.kion_username = username if isinstance(username, str) and username else None


_ASKED_KION_FROM_HERE = (
    "This check ran from your machine: Kion must be reachable from here (VPN, proxy), and your "
    "AWS identity needs secretsmanager:GetSecretValue on the Kion API key secret (and "
    "kms:Decrypt on its key), even when the rotation function has both."
)
_FROM_HERE = {
    "kion": _ASKED_KION_FROM_HERE,
    "kion_api_key": _ASKED_KION_FROM_HERE,
    "ses": "This check ran from your machine; a firewall here can block the SMTP port even "
    "when the rotation function reaches SES.",
}


def _note_where_checked(status: InstallationStatus) -> None:
    """A check this machine could not make may still pass where the function runs: say so."""
    for name, note in _FROM_HERE.items():
        check = status.checks.get(name)
        if check is not None and check.ok is None:
            check.fix = f"{check.fix} {note}" if check.fix else note


def _pending(
    aws: AwsAccess,
    secretsmanager: Any,
    state: SecretState,
    status: InstallationStatus,
    function: RotationFunction,
    now: datetime,
) -> PendingRotation | None:
    """The watch's judgement of an unfinished rotation, made with what the function's log adds:
    when it last touched the rotation, and the error it last reported."""
    version_id = state.pending_version
    if version_id is None:
        status.checks["pending"] = Check(True, "no rotation in progress")
        return None
    pending = assess_pending(aws, secretsmanager, state, version_id, function, now=now)
    status.pending = pending
    finding = pending_finding(
        version_id,
        pending.activity,
        timeout=function.timeout,
        now=now,
        advice=give_up_advice(pending, state.name, now),
        kion_uses_new_key=bool(
            pending.access_key_id and pending.access_key_id == status.kion_username
        ),
    )
    status.checks["pending"] = Check(finding.ok, finding.summary, finding.fix)
    return pending


def _rollback(
    aws: AwsAccess,
    state: SecretState,
    status: InstallationStatus,
    function: RotationFunction,
    now: datetime,
) -> None:
    """A version labelled ROLLBACK is a rollback that has not finished: one running now (the
    function logged it within its timeout) or one that stopped, which the rollback command
    finishes. Without one, no check is added."""
    version_id = state.rollback_version
    if version_id is None:
        return
    moved = CURRENT in state.stages.get(version_id, [])
    where = (
        "AWSCURRENT moved back, but the key rolled back from is not retired yet"
        if moved
        else "AWSCURRENT has not moved back yet; Kion may already send with the previous key"
    )
    last = _last_rollback_record(aws, state, function, now)
    if last is not None and now - last < function.timeout:
        status.checks["rollback"] = Check(
            True, f"a rollback is running (version {version_id}, logged {span(now - last)} ago)"
        )
        return
    status.checks["rollback"] = Check(
        False,
        f"a rollback stopped before it finished: version {version_id} is labelled ROLLBACK "
        f"({where})",
        f"Run it again: ses-smtp-rotator rollback {state.name} (it picks up where it stopped, "
        "or says it is done); ses-smtp-rotator history shows how far it got.",
    )


def _last_rollback_record(
    aws: AwsAccess, state: SecretState, function: RotationFunction, now: datetime
) -> datetime | None:
    """When the function last logged a rollback of the secret that has not finished, within its
    timeout (and a margin); None when it did not, or its log cannot be read."""
    rollbacks, _ = past_rotations(
        aws.client("logs", region_of_arn(function.arn) or aws.region),
        function.log_group,
        kind=ROTATION,
        secret_arn=state.arn,
        name=state.name,
        since=now - function.timeout - timedelta(minutes=1),
    )
    unfinished = [
        found.ended for found in rollbacks if found.kind == ROLLBACK and found.outcome == UNFINISHED
    ]
    return max(unfinished, default=None)


def _list_keys(
    aws: AwsAccess,
    current: InstallationSecret,
    status: InstallationStatus,
    pending: PendingRotation | None,
) -> None:
    """The IAM user's keys and what each is for (the access_key check judges the current one)."""
    try:
        keys = UserAccessKeys(current.iam_user_name, iam=aws.client("iam")).list()
    except RotationError:  # the access_key check names the cause
        return
    for key in sorted(keys, key=lambda key: key.created_at):
        if key.access_key_id == current.username:
            role = "current"
            status.key_created = key.created_at
        elif pending and key.access_key_id == pending.access_key_id:
            role = "pending"
        elif key.access_key_id == status.kion_username:
            role = "kion"
        elif key.access_key_id in {entry.get("access_key_id") for entry in status.retired_keys}:
            role = "retired"
        else:
            role = "unused"
        status.access_keys.append(
            AccessKeyInfo(key.access_key_id, key.created_at, key.active, role)
        )
