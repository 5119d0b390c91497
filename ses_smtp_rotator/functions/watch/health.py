"""The health of one installation, checked the way the rotation itself would find it.

One code path for the daily watch and for ``ses-smtp-rotator status`` (which asks the deployed
watch for it): Kion sends with AWSCURRENT's key through a host of ``ses_region``; SES accepts
AWSCURRENT's credential; its access key exists and is Active; no rotation has been pending longer
than the function timeout; the last rotation is not older than the schedule allows; the Kion API
key has life left. The checks change nothing, and their findings never carry a secret.
"""

from __future__ import annotations

import ssl
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from botocore.exceptions import ClientError

from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.errors import (
    AwsConnectionError,
    AwsPermissionError,
    KionConnectionError,
    RotationError,
)
from ses_smtp_rotator.functions.installation_metrics import installation_name
from ses_smtp_rotator.functions.installation_secret import InstallationSecret
from ses_smtp_rotator.functions.kion_key_renewal.key_life import KeyLife, stored_key_life
from ses_smtp_rotator.functions.quiet_period import is_quiet
from ses_smtp_rotator.functions.retired_keys import retired_keys
from ses_smtp_rotator.functions.services.account_access import user_access_keys
from ses_smtp_rotator.functions.services.aws_clients import aws_call, client
from ses_smtp_rotator.functions.services.kion_settings import KionClient, KionSmtpSettings
from ses_smtp_rotator.functions.services.secrets_store import CURRENT, PENDING, KionApiKeys
from ses_smtp_rotator.functions.services.ses_hosts import kion_endpoint_verdict
from ses_smtp_rotator.functions.services.ses_smtp import SmtpEndpoint, try_login

# Verdicts, best to worst.
HEALTHY = "healthy"
UNCHECKED = "unchecked"
FAILING = "failing"

ROTATE = "ses-smtp-rotator rotate"

SES_UNREACHABLE_TAG = "ses-smtp-rotator:ses-unreachable-since"
"""The installation secret's tag that holds since when the watch could not connect to SES SMTP
(ISO 8601, UTC); the watch sets it on the first such day and removes it once SES answers."""
SES_UNREACHABLE_FAILING_AFTER = timedelta(hours=20)
"""How long SES SMTP must have been out of reach before the check fails rather than stays
unchecked: the second of two daily watches, whatever the hour each one ran."""

# What an unfinished rotation is doing.
RUNNING = "running"
FAILED = "failed"
STUCK = "stuck"


@dataclass(frozen=True)
class Finding:
    """One check: ``ok`` is None when it could not be made."""

    ok: bool | None
    summary: str
    fix: str | None = None


@dataclass(frozen=True)
class HealthLimits:
    """What counts as too long."""

    function_timeout: timedelta
    """The rotation function's timeout: a rotation pending longer is stuck or failing."""
    rotation_max_age: timedelta | None
    """The schedule's longest period plus a margin; None when no schedule is known."""
    kion_key_renew_after: timedelta
    """Where Kion sets no key lifespan, the age at which a Kion API key is renewed."""


class KionRead(NamedTuple):
    """What one ``GET /api/v3/app-config`` told the watch: the SMTP settings, and the settings
    whole (the Kion API key's check reads the key lifespan from them)."""

    settings: KionSmtpSettings
    app_config: dict[str, Any]


@dataclass(frozen=True)
class _Pending:
    version_id: str
    created: datetime | None
    value: InstallationSecret | None
    """None before createSecret stored one, or when it does not parse."""


@dataclass
class InstallationHealth:
    """What the checks found for one installation secret."""

    secret_id: str
    installation: str
    checked_at: datetime
    kion_username: str | None = None
    pending_version: str | None = None
    days_since_rotation: float | None = None
    kion_api_key_days_left: float | None = None
    kion_api_key_renewal_due: bool = False
    kion_api_key_secret_id: str | None = None
    current_key_last_used: str | None = None
    """IAM's last-used record of the AWSCURRENT key (information only: see ``_retired``)."""
    retired_keys: list[dict[str, Any]] = field(default_factory=list)
    """The installation's deactivated keys: id, origin, when deactivated and deleted, last use
    before deactivation."""
    retired_keys_deleted: list[str] = field(default_factory=list)
    ses_unreachable_since: datetime | None = None
    """Since when SES SMTP could not be reached, as the secret's tag recorded it before this
    check (``SES_UNREACHABLE_TAG``)."""
    ses_reached: bool | None = None
    """Whether this check connected to SES SMTP; None when it did not try."""
    checks: dict[str, Finding] = field(default_factory=dict)

    @property
    def failing(self) -> list[str]:
        return [name for name, finding in self.checks.items() if finding.ok is False]

    @property
    def unchecked(self) -> list[str]:
        return [name for name, finding in self.checks.items() if finding.ok is None]

    @property
    def verdict(self) -> str:
        return FAILING if self.failing else UNCHECKED if self.unchecked else HEALTHY

    def to_document(self) -> dict[str, Any]:
        """JSON-ready: what ``status`` reads back from the watch."""
        document = asdict(self)
        document["checked_at"] = self.checked_at.isoformat()
        since = self.ses_unreachable_since
        document["ses_unreachable_since"] = since.isoformat() if since else None
        document["verdict"] = self.verdict
        document["failing"] = self.failing
        return document

    def alert(self) -> str:
        """The alert text: each failing check with its cause and fix."""
        lines = [f"Kion installation {self.installation} ({self.secret_id}) is failing:"]
        for name in self.failing:
            finding = self.checks[name]
            lines.append(f"- {name}: {finding.summary.rstrip('.')}.")
            if finding.fix:
                lines.append(f"  Fix: {finding.fix}")
        if "retired_keys" in self.checks:
            lines.append(f"Retired keys (information): {self.checks['retired_keys'].summary}.")
        return "\n".join(lines)


@dataclass(frozen=True)
class PendingActivity:
    """What is known of the function's work on an unfinished rotation (a version AWSPENDING
    apart from AWSCURRENT)."""

    last_activity: datetime | None
    """When the function last touched it; None when unknown."""
    source: str
    """Where ``last_activity`` comes from, in words."""
    failed_step: str | None = None
    error: str | None = None
    """The cause of the function's last error about it, when that is its last record."""
    error_fix: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


def classify(
    *, last_activity: datetime | None, failed: bool, timeout: timedelta, now: datetime
) -> tuple[str, bool]:
    """The rotation's state and whether it may be given up, from when the function last touched
    it (None: unknown, so never abandonable) and whether its last record is an error."""
    may_abandon = last_activity is not None and is_quiet(last_activity, timeout, now)
    if failed:
        return FAILED, may_abandon
    return (STUCK if may_abandon else RUNNING), may_abandon


def pending_finding(
    version_id: str,
    activity: PendingActivity,
    *,
    timeout: timedelta,
    now: datetime,
    advice: str,
    kion_uses_new_key: bool = False,
    subject: str = "rotation",
) -> Finding:
    """The judgement of one unfinished rotation, for the watch and for ``status`` alike: in
    progress while the function touched it within its quiet period (``quiet_period``), failed
    when its last record is an error, stuck otherwise. ``advice`` says what to do when it is not
    running."""
    state, _ = classify(
        last_activity=activity.last_activity,
        failed=activity.failed,
        timeout=timeout,
        now=now,
    )
    idle = now - activity.last_activity if activity.last_activity else None
    touched = (
        f" (the function last touched it {idle.total_seconds():.0f} s ago, from "
        f"{activity.source}; timeout {timeout.total_seconds():.0f} s)"
        if idle is not None
        else f" (when the function last touched it is unknown; timeout "
        f"{timeout.total_seconds():.0f} s)"
    )
    if state == RUNNING:
        return Finding(True, f"a {subject} is in progress (version {version_id}){touched}")
    what = (
        f"failed in {activity.failed_step or 'a step'}: {(activity.error or '').rstrip('.')}"
        if state == FAILED
        else "is stuck: the function has not touched it within its timeout, and AWSCURRENT stays "
        "the credential it had"
    )
    fix = " ".join(
        part
        for part in (
            activity.error_fix,
            f"Secrets Manager retries a failed {subject}." if state == FAILED else None,
            advice,
            "Kion already sends with the new key, so the next rotation finishes with it."
            if kion_uses_new_key
            else None,
        )
        if part
    )
    return Finding(False, f"the {subject} to version {version_id} {what}{touched}", fix)


class HealthCheck:
    """Checks installations with one set of clients and limits."""

    def __init__(
        self,
        limits: HealthLimits,
        config: RotationConfig,
        *,
        secretsmanager: Any | None = None,
        iam: Any | None = None,
        check_ses: bool = True,
    ) -> None:
        self.limits = limits
        self.config = config
        self.check_ses = check_ses
        self._secretsmanager = secretsmanager or client("secretsmanager")
        self.iam = iam or client("iam")

    def check(self, secret_id: str, *, now: datetime | None = None) -> InstallationHealth:
        now = now or datetime.now(UTC)
        health = InstallationHealth(secret_id, installation_name(secret_id), now)
        try:
            described = self._describe(secret_id)
        except RotationError as error:
            health.checks["secret"] = Finding(None, error.cause, error.fix)
            return health
        health.installation = installation_name(described["Name"])
        health.ses_unreachable_since = ses_unreachable_since(described)
        current = self._current(secret_id, health)
        if current is None:
            return health
        health.kion_api_key_secret_id = current.kion_api_key_secret_id
        pending = self._pending(secret_id, described, health)
        kion = self._kion(current, health)
        if kion is not None:
            self._kion_sends(current, kion.settings, pending, health)
        self._judge_pending(pending, health, now)
        self._access_key(current, health)
        self._retired(current, described, health)
        if self.check_ses:
            self._ses_accepts(current, health, now)
        self._last_rotation(described, health, now)
        self._kion_api_key(current, health, now, kion.app_config if kion else None)
        return health

    # -- the checks ----------------------------------------------------------------------------

    def _describe(self, secret_id: str) -> dict[str, Any]:
        with aws_call("secretsmanager:DescribeSecret", secret_id):
            return self._secretsmanager.describe_secret(SecretId=secret_id)

    def _current(self, secret_id: str, health: InstallationHealth) -> InstallationSecret | None:
        try:
            with aws_call("secretsmanager:GetSecretValue", secret_id):
                value = self._secretsmanager.get_secret_value(
                    SecretId=secret_id, VersionStage=CURRENT
                )
            return InstallationSecret.parse(value.get("SecretString"))
        except (AwsPermissionError, AwsConnectionError) as error:
            health.checks["secret"] = Finding(None, error.cause, error.fix)
        except RotationError as error:
            health.checks["secret"] = Finding(False, error.cause, error.fix)
        return None

    def _pending(
        self, secret_id: str, described: dict[str, Any], health: InstallationHealth
    ) -> _Pending | None:
        """The rotation in progress (its pending version), if any."""
        version_id = pending_version(described)
        if version_id is None:
            return None
        health.pending_version = version_id
        created, secret_string = self._version_value(secret_id, version_id)
        created = created or self._version_created(secret_id, version_id)
        try:
            value = InstallationSecret.parse(secret_string) if secret_string else None
        except RotationError:
            value = None
        return _Pending(version_id, created, value)

    def _judge_pending(
        self, pending: _Pending | None, health: InstallationHealth, now: datetime
    ) -> None:
        if pending is None:
            health.checks["pending"] = Finding(True, "no rotation in progress")
            return
        kion_username = health.kion_username
        health.checks["pending"] = pending_finding(
            pending.version_id,
            PendingActivity(pending.created, "the pending version's age"),
            timeout=self.limits.function_timeout,
            now=now,
            advice=f"Run `ses-smtp-rotator status {health.installation}` for the step that "
            "failed and what to do.",
            kion_uses_new_key=bool(
                kion_username and pending.value and kion_username == pending.value.username
            ),
        )

    def _version_value(self, secret_id: str, version_id: str) -> tuple[datetime | None, str | None]:
        """When a version was made, and its value (None before createSecret stored one)."""
        try:
            with aws_call("secretsmanager:GetSecretValue", secret_id):
                value = self._secretsmanager.get_secret_value(
                    SecretId=secret_id, VersionId=version_id
                )
        except (ClientError, RotationError):
            return None, None
        created = value.get("CreatedDate")
        return (created if isinstance(created, datetime) else None), value.get("SecretString")

    def _version_created(self, secret_id: str, version_id: str) -> datetime | None:
        with aws_call("secretsmanager:ListSecretVersionIds", secret_id):
            listed = self._secretsmanager.list_secret_version_ids(SecretId=secret_id)
        for version in listed.get("Versions", []):
            if version.get("VersionId") == version_id:
                return version.get("CreatedDate")
        return None

    def _kion(self, current: InstallationSecret, health: InstallationHealth) -> KionRead | None:
        """Kion's SMTP settings, read with the installation's Kion API key."""
        secret_id = current.kion_api_key_secret_id
        try:
            api_key = KionApiKeys(0, secretsmanager=self._secretsmanager).api_key(secret_id)
            kion = KionClient(
                current.kion_url,
                api_key,
                ca_pem=current.kion_ca_bundle,
                timeout=self.config.kion_timeout,
                retries=self.config.kion_retries,
                backoff_factor=self.config.kion_retry_backoff,
                api_key_secret_id=secret_id,
            )
            app_config = kion.app_config()
            return KionRead(KionSmtpSettings.from_app_config(app_config, kion.kion_url), app_config)
        except (AwsPermissionError, AwsConnectionError, KionConnectionError) as error:
            health.checks["kion"] = Finding(None, f"could not ask Kion: {error.cause}", error.fix)
        except RotationError as error:
            health.checks["kion"] = Finding(
                False, f"a rotation would fail now: {error.cause}", error.fix
            )
        except (ssl.SSLError, ValueError) as error:  # e.g. a kion_ca_bundle that does not load
            health.checks["kion"] = Finding(
                False,
                f"a rotation would fail now: Kion cannot be asked ({type(error).__name__})",
                "Check the secret's kion_ca_bundle: it must hold PEM certificates.",
            )
        return None

    def _kion_sends(
        self,
        current: InstallationSecret,
        kion: KionSmtpSettings,
        pending: _Pending | None,
        health: InstallationHealth,
    ) -> None:
        username = kion.username or None
        pending_key = pending.value.username if pending and pending.value else None
        health.kion_username = username
        verdict = kion_endpoint_verdict(kion, current)
        health.checks["kion_endpoint"] = Finding(
            verdict.ok, verdict.summary.rstrip("."), verdict.fix or None
        )
        if not current.username:
            health.checks["kion"] = Finding(
                True,
                f"sends with {username or 'no username'}; the secret holds no credential yet "
                "(the first rotation adopts Kion's key)",
            )
        elif username == current.username:
            health.checks["kion"] = Finding(True, f"sends with {username}, the AWSCURRENT key")
        elif username and username == pending_key:
            health.checks["kion"] = Finding(
                True, f"sends with {username}, the new key of the rotation in progress"
            )
        else:
            health.checks["kion"] = Finding(
                False,
                f"sends with {username or 'no username'}, not the AWSCURRENT key "
                f"{current.username}",
                "Someone changed Kion's SMTP settings by hand: put the AWSCURRENT credential "
                f"back into Kion, or run `{ROTATE} {health.installation} --wait` (the rotation "
                "adopts the key Kion uses when it is one of the user's).",
            )

    def _access_key(self, current: InstallationSecret, health: InstallationHealth) -> None:
        if not current.username:
            health.checks["access_key"] = Finding(True, "no credential yet to look up")
            return
        try:
            keys = user_access_keys(current, health.secret_id, self.iam).list()
        except (AwsPermissionError, AwsConnectionError) as error:
            health.checks["access_key"] = Finding(
                None, f"could not list the IAM user's keys: {error.cause}", error.fix
            )
            return
        except RotationError as error:  # the user does not exist
            health.checks["access_key"] = Finding(False, error.cause, error.fix)
            return
        key = next((k for k in keys if k.access_key_id == current.username), None)
        if key is None:
            health.checks["access_key"] = Finding(
                False,
                f"the AWSCURRENT key {current.username} is not one of IAM user "
                f"{current.iam_user_name}'s keys",
                "Someone deleted it, or iam_user_name names the wrong user: run "
                f"`{ROTATE} {health.installation} --wait` to make a new key (the rotation adopts "
                "the key Kion uses).",
            )
        elif not key.active:
            health.checks["access_key"] = Finding(
                False,
                f"the AWSCURRENT key {current.username} is inactive, so SES refuses it",
                "Activate it again in IAM if that was a mistake; otherwise run "
                f"`{ROTATE} {health.installation} --wait` (it makes a new key and proves it "
                "before Kion gets it).",
            )
        else:
            health.checks["access_key"] = Finding(
                True, f"the AWSCURRENT key {current.username} exists and is Active"
            )

    def _retired(
        self, current: InstallationSecret, described: dict[str, Any], health: InstallationHealth
    ) -> None:
        """The deactivated keys and IAM's last-used records, as information. IAM records a key's
        last signed AWS request; AWS does not say that SES SMTP logins or sending count, and
        this product's own logins would count alike, so nothing is judged by it."""
        tags = {tag["Key"]: tag.get("Value", "") for tag in described.get("Tags", [])}
        records = retired_keys(tags)
        keys = user_access_keys(current, health.secret_id, self.iam)
        if current.username:
            try:
                health.current_key_last_used = keys.last_used(current.username).describe()
            except (AwsPermissionError, AwsConnectionError):
                health.current_key_last_used = "unknown (IAM could not be asked)"
        if not records:
            return
        grace = timedelta(days=self.config.previous_key_grace_days)
        try:
            status = {key.access_key_id: key.active for key in keys.list()}
        except RotationError:
            status = {}
        lines = []
        for key_id, record in sorted(records.items()):
            state = {True: "Active again", False: "Inactive"}.get(status.get(key_id), "gone")
            health.retired_keys.append(
                {
                    "access_key_id": key_id,
                    "status": state,
                    "origin": "adopted" if record.adopted else "made",
                    "deactivated_at": record.deactivated_at.isoformat(),
                    "deletion_after": record.window_ends(grace).isoformat(),
                    "last_used_before_deactivation": record.describe_last_use(),
                }
            )
            lines.append(
                f"{key_id} ({'adopted, not made by this product' if record.adopted else 'made'}"
                f") {state} since {record.deactivated_at:%Y-%m-%d %H:%M} UTC, deleted after "
                f"{record.window_ends(grace):%Y-%m-%d %H:%M} UTC; {record.describe_last_use()}"
            )
        health.checks["retired_keys"] = Finding(True, "; ".join(lines))

    def _ses_accepts(
        self, current: InstallationSecret, health: InstallationHealth, now: datetime
    ) -> None:
        if not current.username:
            health.checks["ses"] = Finding(True, "no credential yet to try")
            return
        endpoint = SmtpEndpoint.of(current, self.config.smtp_timeout)
        try:
            accepted = try_login(endpoint, current.username, current.password)
        except (RotationError, ssl.SSLError, ValueError) as error:
            cause = error.cause if isinstance(error, RotationError) else type(error).__name__
            health.ses_reached = False
            health.checks["ses"] = unreachable_ses_finding(
                f"could not ask SES SMTP at {endpoint}: {cause}",
                since=health.ses_unreachable_since,
                now=now,
            )
            return
        health.ses_reached = True
        if accepted:
            health.checks["ses"] = Finding(True, f"{endpoint} accepts the AWSCURRENT credential")
        else:
            health.checks["ses"] = Finding(
                False,
                f"{endpoint} refuses the AWSCURRENT credential (535)",
                "Check that the key is Active and that the IAM user may call ses:SendRawEmail "
                f"in {current.ses_region}; then run `{ROTATE} {health.installation} --wait`, "
                "which proves a new key before Kion gets it.",
            )

    def _last_rotation(
        self, described: dict[str, Any], health: InstallationHealth, now: datetime
    ) -> None:
        last = described.get("LastRotatedDate")
        since = last or described.get("CreatedDate")
        if since is not None:
            health.days_since_rotation = round((now - since) / timedelta(days=1), 3)
        max_age = self.limits.rotation_max_age
        if max_age is None or since is None:
            health.checks["last_rotation"] = Finding(
                None if since is None else True,
                f"last rotated {_when(last, now)}" + ("" if max_age else " (no schedule known)"),
            )
            return
        if now - since <= max_age:
            health.checks["last_rotation"] = Finding(True, f"last rotated {_when(last, now)}")
            return
        health.checks["last_rotation"] = Finding(
            False,
            f"last rotated {_when(last, now)}, longer than the schedule allows ({_days(max_age)})",
            "Check that the installation's schedule is enabled and that its rotations succeed "
            f"(`ses-smtp-rotator status {health.installation}`); then run "
            f"`{ROTATE} {health.installation} --wait`.",
        )

    def _kion_api_key(
        self,
        current: InstallationSecret,
        health: InstallationHealth,
        now: datetime,
        app_config: dict[str, Any] | None,
    ) -> None:
        """The life left to the Kion API key; ``app_config`` is Kion's settings as the SMTP
        check read them (None: read them again, with the stored key)."""
        try:
            life = stored_key_life(
                current,
                self.config,
                now=now,
                renew_after=self.limits.kion_key_renew_after,
                secretsmanager=self._secretsmanager,
                app_config=app_config,
            )
        except (AwsPermissionError, AwsConnectionError, KionConnectionError) as error:
            health.checks["kion_api_key"] = Finding(
                None, f"could not check the Kion API key: {error.cause}", error.fix
            )
            return
        except RotationError as error:  # expired, revoked, or no key stored
            health.checks["kion_api_key"] = Finding(False, error.cause, error.fix)
            return
        self._kion_api_key_renewal(current.kion_api_key_secret_id, health, now)
        health.kion_api_key_days_left = None if life.days_left is None else round(life.days_left, 3)
        health.kion_api_key_renewal_due = life.due
        health.checks["kion_api_key"] = Finding(True, describe_key_life(life))

    def _kion_api_key_renewal(
        self, key_secret_id: str, health: InstallationHealth, now: datetime
    ) -> None:
        """A renewal of the Kion API key in progress, judged as a pending rotation is: one the
        renewal function left longer than the timeout failed or is stuck."""
        try:
            with aws_call("secretsmanager:DescribeSecret", key_secret_id):
                described = self._secretsmanager.describe_secret(SecretId=key_secret_id)
        except RotationError as error:
            health.checks["kion_api_key_renewal"] = Finding(None, error.cause, error.fix)
            return
        version_id = pending_version(described)
        if version_id is None:
            return
        created, _ = self._version_value(key_secret_id, version_id)
        try:  # a renewal that stopped before createSecret stored a value is aged by its listing
            created = created or self._version_created(key_secret_id, version_id)
        except RotationError as error:
            health.checks["kion_api_key_renewal"] = Finding(None, error.cause, error.fix)
            return
        health.checks["kion_api_key_renewal"] = pending_finding(
            version_id,
            PendingActivity(created, "the pending version's age"),
            timeout=self.limits.function_timeout,
            now=now,
            advice="The renewal function's log names the step that failed and its cause (alarm "
            "KionApiKeyRenewalErrors). Once fixed, give the renewal up with `ses-smtp-rotator "
            f"abandon {health.secret_id}`: the next watch starts another, whose createSecret "
            "deletes the key this one made.",
            subject="renewal of the Kion API key",
        )


def ses_unreachable_since(described: dict[str, Any]) -> datetime | None:
    """The moment ``SES_UNREACHABLE_TAG`` records in a DescribeSecret answer (None: none, or a
    value that is no moment)."""
    for tag in described.get("Tags") or []:
        if tag.get("Key") == SES_UNREACHABLE_TAG:
            try:
                since = datetime.fromisoformat(str(tag.get("Value")))
            except ValueError:
                return None
            return since if since.tzinfo is not None else since.replace(tzinfo=UTC)
    return None


def unreachable_ses_finding(summary: str, *, since: datetime | None, now: datetime) -> Finding:
    """SES SMTP could not be reached: unchecked the first day (a passing network fault), failing
    once it has been out of reach since an earlier daily watch."""
    fix = (
        "Check the network path from the function to SES SMTP (security group, VPC endpoint or "
        "NAT) and the secret's smtp_host and smtp_port; the first watch that reaches SES again "
        "clears this."
    )
    if since is None or now - since < SES_UNREACHABLE_FAILING_AFTER:
        return Finding(None, summary, fix)
    return Finding(
        False,
        f"{summary}; out of reach since {since:%Y-%m-%d %H:%M} UTC ({_days(now - since)}), so "
        "rotations fail there too",
        fix,
    )


def pending_version(described: dict[str, Any]) -> str | None:
    """The version AWSPENDING labels apart from AWSCURRENT, in a DescribeSecret answer."""
    stages = described.get("VersionIdsToStages", {})
    return next(
        (v for v, labels in stages.items() if PENDING in labels and CURRENT not in labels), None
    )


def describe_key_life(life: KeyLife) -> str:
    if life.created_at is None:
        return "Kion accepts the key; its age is unknown (stored without its id), so it is renewed"
    left = (
        "Kion sets no lifespan"
        if life.days_left is None
        else f"{life.days_left:.1f} days left of its life"
    )
    renew_at = life.renew_at or life.now
    when = "due now" if life.due else f"due {renew_at:%Y-%m-%d %H:%M} UTC"
    return f"Kion accepts the key; {left}; renewal {when}"


def _days(delta: timedelta) -> str:
    days = delta / timedelta(days=1)
    return f"{days:.1f} days" if days >= 1 else f"{delta.total_seconds():.0f} s"


def _when(moment: datetime | None, now: datetime) -> str:
    return "never" if moment is None else f"{_days(now - moment)} ago"
