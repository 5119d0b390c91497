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

from botocore.exceptions import ClientError

from smtp_rotation.errors import AwsPermissionError, KionConnectionError, RotationError
from smtp_rotation.iam_keys import UserAccessKeys
from smtp_rotation.kion import KionClient
from smtp_rotation.secrets_store import KionApiKeys
from smtp_rotation.ses_smtp import SmtpEndpoint, try_login
from smtp_rotation.settings import InstallationSecret

from .aws_access import AwsAccess, asking
from .function_logs import FunctionLogReader
from .schedule import next_rotation
from .secret_state import SecretState, abandon_command, read_state, version_created

# A rotation runs four Lambda invocations of at most 15 minutes each; one older than this that
# has not finished is stuck rather than running.
STUCK_AFTER = timedelta(minutes=60)
_CHECK_TIMEOUT = 10.0


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
class PendingRotation:
    version_id: str
    state: str  # "running", "failed" or "stuck"
    started: datetime | None
    access_key_id: str | None
    kion_uses_it: bool
    last_error_step: str | None = None
    last_error: str | None = None
    last_error_fix: str | None = None


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
    pending: PendingRotation | None = None
    checks: dict[str, Check] = field(default_factory=dict)

    @property
    def key_age(self) -> timedelta | None:
        return datetime.now(UTC) - self.key_created if self.key_created else None

    @property
    def problems(self) -> list[str]:
        return [name for name, check in self.checks.items() if check.ok is False]

    @property
    def in_progress(self) -> bool:
        return self.pending is not None and self.pending.state == "running"

    def to_json(self) -> str:
        def encode(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.isoformat()
            raise TypeError(type(value).__name__)

        document = asdict(self)
        document["key_age_days"] = (
            round(self.key_age.total_seconds() / 86400, 3) if self.key_age else None
        )
        document["problems"] = self.problems
        document["in_progress"] = self.in_progress
        return json.dumps(document, default=encode, indent=2)


def gather(
    aws: AwsAccess, secret_id: str, *, check_smtp: bool, log_group: str | None = None
) -> InstallationStatus:
    """Read everything ``status`` reports. Raises SetupError when the secret cannot be read."""
    secretsmanager = aws.client("secretsmanager")
    state = read_state(secretsmanager, secret_id)
    status = InstallationStatus(
        secret_arn=state.arn,
        secret_name=state.name,
        current_version=state.current_version,
        rotation_function=state.function_arn,
        rotation_enabled=state.rotation_enabled,
        last_rotated=state.last_rotated,
        next_rotation=state.next_rotation,
    )
    if not state.function_arn:
        status.checks["rotation"] = Check(
            False,
            "no rotation function is attached to the secret",
            "Deploy the stack with this installation in cdk.json.",
        )
    current = _read_version(secretsmanager, state, status, stage="AWSCURRENT")
    if current is None:
        return status
    status.access_key_id = current.username or None
    status.iam_user_name = current.iam_user_name
    status.kion_url = current.kion_url
    _schedule(aws, state, status)
    kion_username = _kion(aws, secretsmanager, current, status)
    pending = _pending(aws, secretsmanager, state, status, kion_username, log_group)
    _keys(aws, current, status, kion_username, pending)
    if check_smtp:
        _smtp(current, status)
    return status


def _read_version(
    secretsmanager: Any, state: SecretState, status: InstallationStatus, **selector: str
) -> InstallationSecret | None:
    stage = selector.get("stage")
    request = {"VersionStage": stage} if stage else {"VersionId": selector["version_id"]}
    with asking("secretsmanager:GetSecretValue", f"secret {state.name}"):
        try:
            value = secretsmanager.get_secret_value(SecretId=state.arn, **request)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if stage or code != "ResourceNotFoundException":
                raise
            return None  # a pending version createSecret has not filled yet
    try:
        return InstallationSecret.parse(value.get("SecretString"))
    except RotationError as error:
        if stage:
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
        username = kion.smtp_settings().username
    except AwsPermissionError as error:
        status.checks["kion"] = Check(
            None,
            f"could not read the Kion API key: {error.cause}",
            "This check needs secretsmanager:GetSecretValue on the Kion API key secret (and "
            "kms:Decrypt on its key) for your AWS identity.",
        )
        return None
    except KionConnectionError as error:
        status.checks["kion"] = Check(
            None,
            f"could not reach Kion: {error.cause}",
            "This check runs from your machine: Kion must be reachable from here (VPN, proxy), "
            "even when the rotation function reaches it.",
        )
        return None
    except RotationError as error:
        status.checks["kion"] = Check(
            None, f"could not read Kion's SMTP settings: {error.cause}", error.fix
        )
        return None
    except (ssl.SSLError, ValueError) as error:  # e.g. a kion_ca_bundle that does not load
        status.checks["kion"] = Check(
            None,
            f"could not ask Kion ({type(error).__name__})",
            "Check the secret's kion_ca_bundle: it must hold PEM certificates.",
        )
        return None
    status.kion_username = username or None
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


def _pending(
    aws: AwsAccess,
    secretsmanager: Any,
    state: SecretState,
    status: InstallationStatus,
    kion_username: str | None,
    log_group: str | None,
) -> PendingRotation | None:
    version_id = state.pending_version
    if version_id is None:
        status.checks["pending"] = Check(True, "no rotation in progress")
        return None
    started = version_created(secretsmanager, state.arn, version_id)
    pending_secret = _read_version(secretsmanager, state, status, version_id=version_id)
    key = pending_secret.username if pending_secret else None
    pending = PendingRotation(
        version_id=version_id,
        state="running",
        started=started,
        access_key_id=key,
        kion_uses_it=bool(key and key == kion_username),
    )
    if state.function_arn:
        reader = FunctionLogReader(aws, state.function_arn, log_group=log_group)
        failure = reader.last_error(version_id, (started or datetime.now(UTC)) - STUCK_AFTER)
        if failure is not None:
            pending.state = "failed"
            pending.last_error_step = failure.step or None
            pending.last_error = failure.message
            pending.last_error_fix = failure.fix
    if pending.state == "running" and started and datetime.now(UTC) - started > STUCK_AFTER:
        pending.state = "stuck"
    status.pending = pending
    if pending.state == "running":
        status.checks["pending"] = Check(True, f"a rotation is in progress (version {version_id})")
        if pending.kion_uses_it and "kion" in status.checks:
            status.checks["kion"] = Check(
                True, f"already sends with {key}, the new key of the rotation in progress"
            )
        return pending
    what = (
        f"failed in {pending.last_error_step or 'a step'}: {pending.last_error}"
        if pending.state == "failed"
        else f"has not finished after {STUCK_AFTER.total_seconds() / 60:.0f} min"
    )
    then = (
        " Kion already sends with the new key, so the next rotation finishes with it."
        if pending.kion_uses_it
        else ""
    )
    fix = (f"{pending.last_error_fix} " if pending.last_error_fix else "") + (
        "Secrets Manager retries the rotation; to give up on it instead, run "
        f"`{abandon_command(state, version_id)}` and rotate again "
        f"(`ses-smtp-rotator rotate {state.name} --wait`).{then}"
    )
    status.checks["pending"] = Check(False, f"the rotation to version {version_id} {what}", fix)
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
    except RotationError as error:
        status.checks.setdefault(
            "keys", Check(None, f"could not list the IAM user's keys: {error.cause}")
        )
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
    if current.username and status.key_created is None:
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
        status.checks["smtp"] = Check(None, "the secret holds no credential yet to try")
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
