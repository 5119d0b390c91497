"""Where an installation's SMTP credential stands: the current key and its age, the rotation
history and schedule, what Kion is configured with, any unfinished rotation, and (on request)
whether SES accepts the current credential.

It reuses the rotation function's own modules to read the secret, Kion and SES, and never returns
a password or key: only access key ids, which are SMTP user names.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from smtp_rotation.errors import (
    AwsConnectionError,
    AwsPermissionError,
    KionConnectionError,
    RotationError,
)
from smtp_rotation.iam_keys import UserAccessKeys
from smtp_rotation.kion import KionClient
from smtp_rotation.secrets_store import KionApiKeys
from smtp_rotation.ses_endpoint import kion_endpoint_verdict
from smtp_rotation.ses_smtp import SmtpEndpoint, try_login
from smtp_rotation.settings import InstallationSecret

from .aws_access import AwsAccess, asking, region_of_arn
from .pending_rotation import FAILED, RUNNING, PendingRotation, assess_pending, give_up_advice
from .rotation_function import RotationFunction, describe_function
from .schedule import next_rotation
from .secret_state import (
    SecretState,
    looks_like_kion_api_key,
    read_state,
    require_installation_secret,
    wrong_kind_error,
)
from .watch_query import WatchAnswer, ask_watch, watch_function

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
    role: str  # "current", "pending", "kion", "unused"


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
    pending: PendingRotation | None = None
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
    log_group: str | None = None,
    now: datetime | None = None,
) -> InstallationStatus:
    """Read everything ``status`` reports; print nothing (the daily watch calls it too).

    Raises SetupError when the secret cannot be read or is not an installation secret.
    """
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
    _schedule(aws, state, status)
    function = describe_function(
        aws.client("lambda", region_of_arn(state.function_arn or "")),
        state.function_arn or "",
        log_group=log_group,
    )
    watch = watch_function(function.watch_function)
    if watch:
        kion_username = _kion_from_watch(ask_watch(aws, watch, state.arn), status)
    else:
        kion_username = _kion(aws, secretsmanager, current, status)
    status.function_timeout = function.describe_timeout()
    pending = _pending(aws, secretsmanager, state, status, kion_username, function, now)
    _keys(aws, current, status, kion_username, pending)
    if check_smtp:
        _smtp(current, status)
    return status


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


def _schedule(aws: AwsAccess, state: SecretState, status: InstallationStatus) -> None:
    if status.next_rotation:  # Secrets Manager's own rotation rules
        return
    schedule, unknown = next_rotation(aws.client("scheduler"), state.arn, state.name)
    if schedule is not None:
        status.next_rotation = schedule.next_run
        status.schedule = schedule.describe()
    else:
        status.schedule = f"unknown ({unknown})" if unknown else "no schedule calls RotateSecret"


def _kion(
    aws: AwsAccess, secretsmanager: Any, current: InstallationSecret, status: InstallationStatus
) -> str | None:
    """Kion's SMTP username, read as the function reads it. A Kion that refuses the API key, an
    empty or missing key secret, or a wrong URL fail the check: the next rotation would fail the
    same way. What only this machine cannot do (reach Kion, read the key secret) leaves it open."""
    try:
        api_key = KionApiKeys(0, secretsmanager=secretsmanager).api_key(
            current.kion_api_key_secret_id
        )
        kion = KionClient(
            current.kion_url,
            api_key,
            ca_pem=current.kion_ca_bundle,
            timeout=_CHECK_TIMEOUT,
            retries=1,
            backoff_factor=0.2,
            api_key_secret_id=current.kion_api_key_secret_id,
        )
        kion_smtp = kion.smtp_settings()
        username = kion_smtp.username
    except AwsPermissionError as error:
        status.checks["kion"] = Check(
            None,
            f"could not read the Kion API key: {error.cause}",
            "This check needs secretsmanager:GetSecretValue on the Kion API key secret (and "
            "kms:Decrypt on its key) for your AWS identity.",
        )
        return None
    except (KionConnectionError, AwsConnectionError) as error:
        status.checks["kion"] = Check(
            None,
            f"could not reach Kion: {error.cause}",
            "This check runs from your machine: Kion must be reachable from here (VPN, proxy), "
            "even when the rotation function reaches it.",
        )
        return None
    except RotationError as error:
        status.checks["kion"] = Check(False, f"a rotation would fail now: {error.cause}", error.fix)
        return None
    except (ssl.SSLError, ValueError) as error:  # e.g. a kion_ca_bundle that does not load
        status.checks["kion"] = Check(
            False,
            f"a rotation would fail now: Kion cannot be asked ({type(error).__name__})",
            "Check the secret's kion_ca_bundle: it must hold PEM certificates.",
        )
        return None
    status.kion_username = username or None
    verdict = kion_endpoint_verdict(kion_smtp, current)  # the rotation's own check, as it runs
    status.checks["kion_endpoint"] = Check(
        verdict.ok,
        verdict.summary if verdict.ok else verdict.summary.rstrip("."),
        verdict.fix or None,
    )
    if not current.username:
        status.checks["kion"] = Check(
            True,
            f"sends with {username or 'no username'}; the secret holds no credential yet "
            "(the first rotation adopts Kion's key)",
        )
    elif username == current.username:
        status.checks["kion"] = Check(True, f"sends with {username}, the AWSCURRENT key")
    else:
        status.checks["kion"] = Check(
            False,
            f"sends with {username or 'no username'}, not the AWSCURRENT key {current.username}",
            "If a rotation is unfinished, see the pending rotation below; otherwise someone "
            "changed Kion's SMTP settings by hand: put the AWSCURRENT credential back into Kion, "
            "or rotate (the rotation adopts the key Kion uses when it is one of the user's).",
        )
    return username or None


# The watch's checks status shows, as status names them (status judges a pending rotation
# itself, from the function's log as well).
_WATCH_CHECKS = {
    "kion": "kion",
    "kion_endpoint": "kion_endpoint",
    "kion_api_key": "kion_api_key",
    "access_key": "access_key",
    "ses": "ses",
    "last_rotation": "last_rotation",
}


def _kion_from_watch(answer: WatchAnswer, status: InstallationStatus) -> str | None:
    """Kion's side as the deployed watch found it: the same checks, run where the rotation
    runs, with no need to read the Kion API key here."""
    status.kion_checked_by = answer.function
    document = answer.document
    if document is None:
        status.checks["kion"] = Check(
            None, f"could not ask the watch {answer.function}: {answer.problem}", answer.fix
        )
        return None
    for watch_name, name in _WATCH_CHECKS.items():
        finding = document["checks"].get(watch_name)
        if isinstance(finding, dict):
            status.checks[name] = Check(finding.get("ok"), finding["summary"], finding.get("fix"))
    days_left = document.get("kion_api_key_days_left")
    status.kion_api_key_days_left = days_left if isinstance(days_left, int | float) else None
    username = document.get("kion_username")
    status.kion_username = username if isinstance(username, str) and username else None
    return status.kion_username


def _pending(
    aws: AwsAccess,
    secretsmanager: Any,
    state: SecretState,
    status: InstallationStatus,
    kion_username: str | None,
    function: RotationFunction,
    now: datetime | None,
) -> PendingRotation | None:
    version_id = state.pending_version
    if version_id is None:
        status.checks["pending"] = Check(True, "no rotation in progress")
        return None
    now = now or datetime.now(UTC)
    pending = assess_pending(aws, secretsmanager, state, version_id, function, now=now)
    status.pending = pending
    key = pending.access_key_id
    kion_uses_it = bool(key and key == kion_username)
    idle = pending.idle_for(now)
    touched = (
        f" (the function last touched it {idle.total_seconds():.0f} s ago, from "
        f"{pending.activity_source}; timeout {pending.function_timeout})"
        if idle is not None
        else f" (timeout {pending.function_timeout})"
    )
    if pending.state == RUNNING:
        status.checks["pending"] = Check(
            True, f"a rotation is in progress (version {version_id}){touched}"
        )
        if kion_uses_it and "kion" in status.checks:
            status.checks["kion"] = Check(
                True, f"already sends with {key}, the new key of the rotation in progress"
            )
        return pending
    what = (
        f"failed in {pending.last_error_step or 'a step'}: {(pending.last_error or '').rstrip('.')}"
        if pending.state == FAILED
        else "is stuck: the function has not touched it within its timeout"
    )
    then = (
        " Kion already sends with the new key, so the next rotation finishes with it."
        if kion_uses_it
        else ""
    )
    retry = "Secrets Manager retries a failed rotation. " if pending.state == FAILED else ""
    fix = (
        (f"{pending.last_error_fix} " if pending.last_error_fix else "")
        + retry
        + give_up_advice(pending, state.name, now)
        + then
    )
    status.checks["pending"] = Check(
        False, f"the rotation to version {version_id} {what}{touched}", fix
    )
    return pending


def _keys(
    aws: AwsAccess,
    current: InstallationSecret,
    status: InstallationStatus,
    kion_username: str | None,
    pending: PendingRotation | None,
) -> None:
    try:
        keys = UserAccessKeys(current.iam_user_name, iam=aws.client("iam")).list()
    except (AwsPermissionError, AwsConnectionError) as error:
        status.checks.setdefault(
            "keys", Check(None, f"could not list the IAM user's keys: {error.cause}", error.fix)
        )
        return
    except RotationError as error:  # the user does not exist
        status.checks["keys"] = Check(False, f"a rotation would fail now: {error.cause}", error.fix)
        return
    for key in sorted(keys, key=lambda key: key.created_at):
        if key.access_key_id == current.username:
            role = "current"
            status.key_created = key.created_at
        elif pending and key.access_key_id == pending.access_key_id:
            role = "pending"
        elif key.access_key_id == kion_username:
            role = "kion"
        else:
            role = "unused"
        status.access_keys.append(
            AccessKeyInfo(key.access_key_id, key.created_at, key.active, role)
        )
    current_key = next(
        (key for key in status.access_keys if key.access_key_id == current.username), None
    )
    if current_key is not None and not current_key.active:
        status.checks["keys"] = Check(
            False,
            f"the AWSCURRENT key {current.username} is inactive, so SES refuses it",
            "Activate it again in IAM if that was a mistake; otherwise rotate (the rotation "
            "makes a new key and proves it before Kion gets it).",
        )
    elif current.username and status.key_created is None:
        status.checks["keys"] = Check(
            False,
            f"the AWSCURRENT key {current.username} is not one of IAM user "
            f"{current.iam_user_name}'s keys",
            "Someone deleted it or iam_user_name names the wrong user; rotate to make a new "
            "key (the rotation adopts the key Kion uses).",
        )


def _smtp(current: InstallationSecret, status: InstallationStatus) -> None:
    endpoint = SmtpEndpoint.of(current, _CHECK_TIMEOUT)
    if not current.username:
        status.checks["smtp"] = Check(
            True,
            "nothing to try yet: the secret holds no credential (the first rotation proves "
            "the key it adopts)",
        )
        return
    try:
        accepted = try_login(endpoint, current.username, current.password)
    except (RotationError, ssl.SSLError, ValueError) as error:
        cause = error.cause if isinstance(error, RotationError) else type(error).__name__
        status.checks["smtp"] = Check(
            None,
            f"could not ask SES SMTP at {endpoint}: {cause}",
            "This check runs from your machine; a firewall here can block the SMTP port even "
            "when the rotation function reaches SES.",
        )
        return
    if accepted:
        status.checks["smtp"] = Check(True, f"{endpoint} accepts the AWSCURRENT credential")
    else:
        status.checks["smtp"] = Check(
            False,
            f"{endpoint} refuses the AWSCURRENT credential (535)",
            "Check that the key is active and the IAM user may call ses:SendRawEmail in "
            "ses_region; a key made seconds ago may still be propagating. Rotating makes a new "
            "key and proves it before Kion gets it.",
        )
