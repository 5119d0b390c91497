"""The daily watch over one deployment: check every installation, record per-installation
metrics, alert on what fails (cause and fix), and start a Kion API key renewal when one is due.

Deployed, it fans out through an SQS queue: the scheduled run only lists the installations and
sends one message per installation (``dispatch``); each message is one invocation that checks and
acts on that installation alone (``watch_one``), on its own time budget, so a Kion that hangs
delays nobody else. SQS rather than asynchronous self-invocation or a Step Functions Map: the
queue's event source caps how many installations are checked at once (Kion and SES see a steady
rate, the account's concurrency is not drained), a message that could not be handled is
delivered again a bounded number of times and then kept in a dead-letter queue that raises an
alarm (never dropped), and it needs no state machine. A message delivered twice is harmless: the
checks change nothing, and a renewal already started is refused by Secrets Manager as in
progress, which the watch reports as such.

It changes nothing else. A Kion key that expired or was revoked cannot be renewed: its check
fails, and the alert names the command that stores a new key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as CheckTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from ses_smtp_rotator.functions.errors import RotationError
from ses_smtp_rotator.functions.installation_metrics import (
    installation_name,
    put_installation_metrics,
)
from ses_smtp_rotator.functions.kion_key_renewal.key_life import renew_after_from_environment
from ses_smtp_rotator.functions.kion_key_renewal.key_secret import ApiKeySecret
from ses_smtp_rotator.functions.services.aws_clients import aws_call, client, error_code
from ses_smtp_rotator.functions.telemetry import logger, metrics
from ses_smtp_rotator.functions.watch.health import (
    FAILING,
    HEALTHY,
    SES_UNREACHABLE_TAG,
    Finding,
    HealthCheck,
    HealthLimits,
    InstallationHealth,
)
from ses_smtp_rotator.functions.watch.incidents import (
    IncidentStore,
    decide,
    incident_parameter_prefix,
)
from ses_smtp_rotator.functions.watch.retired_key_deletion import delete_retired_keys

DEPLOYMENT_TAG = "ses-smtp-rotator:deployment"


@dataclass(frozen=True)
class WatchConfig:
    """The watch's settings, from its function's environment (set by the stack)."""

    deployment: str
    """DEPLOYMENT_NAME: the value of the deployment tag on this deployment's secrets."""
    secret_prefix: str
    """INSTALLATION_SECRET_PREFIX: the name prefix of this deployment's installation secrets."""
    limits: HealthLimits
    alert_topic_arn: str | None = None
    """ALERT_TOPIC_ARN: where failing installations are reported."""
    concurrency: int = 8
    """WATCH_CONCURRENCY: installations checked at once by ``run``."""
    queue_url: str | None = None
    """WATCH_QUEUE_URL: where the scheduled run sends one message per installation."""
    key_secret_prefix: str = ""
    """KION_API_KEY_SECRET_PREFIX: the name prefix of this deployment's Kion API key secrets
    (``<prefix><installation>``), whose ages order the dispatch."""
    incident_prefix: str = ""
    """INCIDENT_PARAMETER_PREFIX: where the open incidents are kept (default
    ``/ses-smtp-rotator/<deployment>/incidents/``)."""

    def __post_init__(self) -> None:
        if not self.incident_prefix:
            object.__setattr__(
                self, "incident_prefix", incident_parameter_prefix(self.deployment or "default")
            )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> WatchConfig:
        def positive(name: str, default: float) -> float:
            raw = environ.get(name, "").strip()
            try:
                value = float(raw) if raw else default
            except ValueError:
                value = -1.0
            if value <= 0:
                raise ValueError(
                    f"Environment variable {name} must be a positive number, not {raw!r}. Fix: "
                    "set it as the stack does, or remove it to use the default."
                )
            return value

        max_age_days = environ.get("ROTATION_MAX_AGE_DAYS", "").strip()
        return cls(
            deployment=environ.get("DEPLOYMENT_NAME", ""),
            secret_prefix=environ.get("INSTALLATION_SECRET_PREFIX", ""),
            limits=HealthLimits(
                function_timeout=timedelta(
                    seconds=positive("ROTATION_FUNCTION_TIMEOUT_SECONDS", 900.0)
                ),
                rotation_max_age=(
                    timedelta(days=positive("ROTATION_MAX_AGE_DAYS", 1.0)) if max_age_days else None
                ),
                kion_key_renew_after=renew_after_from_environment(environ),
            ),
            alert_topic_arn=environ.get("ALERT_TOPIC_ARN") or None,
            concurrency=max(1, int(positive("WATCH_CONCURRENCY", 8))),
            queue_url=environ.get("WATCH_QUEUE_URL") or None,
            key_secret_prefix=environ.get("KION_API_KEY_SECRET_PREFIX", ""),
            incident_prefix=environ.get("INCIDENT_PARAMETER_PREFIX", ""),
        )


@dataclass
class WatchReport:
    """What one run of the watch found and did."""

    checked: list[InstallationHealth] = field(default_factory=list)
    renewals_started: dict[str, str] = field(default_factory=dict)  # key secret -> version id
    alerts_sent: int = 0

    def to_document(self) -> dict[str, Any]:
        return {
            "installations": len(self.checked),
            "healthy": [h.installation for h in self.checked if h.verdict == HEALTHY],
            "failing": [h.installation for h in self.checked if h.verdict == FAILING],
            "renewals_started": sorted(self.renewals_started),
            "alerts_sent": self.alerts_sent,
        }


class Watch:
    """One run over the deployment's installations."""

    def __init__(
        self,
        config: WatchConfig,
        health_check: HealthCheck,
        *,
        secretsmanager: Any | None = None,
        sns: Any | None = None,
        sqs: Any | None = None,
        ssm: Any | None = None,
    ) -> None:
        self.config = config
        self.health_check = health_check
        self._secretsmanager = secretsmanager or client("secretsmanager")
        self._sns = sns
        self._sqs = sqs
        self.incidents = IncidentStore(config.incident_prefix, ssm)
        self._renewal_checked: set[str] = set()

    def run(self, *, now: datetime | None = None) -> WatchReport:
        """Check the installations ``concurrency`` at a time (each waits mostly on Kion and
        SES), then act on what was found, one installation after the other."""
        now = now or datetime.now(UTC)
        report = WatchReport()
        with ThreadPoolExecutor(max_workers=self.config.concurrency) as pool:
            found = list(
                pool.map(
                    lambda secret_arn: self.health_check.check(secret_arn, now=now),
                    list(self.installation_secrets()),
                )
            )
        for health in found:
            self._act(health, report)
        _count(report)
        return report

    def dispatch(self, *, now: datetime | None = None) -> int:
        """Send one message per installation to the watch's queue; return how many."""
        if not self.config.queue_url:
            raise ValueError(
                "Environment variable WATCH_QUEUE_URL is not set. Fix: deploy the watch with "
                "the stack, which sets it to its queue."
            )
        now = now or datetime.now(UTC)
        sqs = self._sqs or client("sqs")
        dispatched = 0
        batch: list[dict[str, str]] = []
        for secret_arn in [*self.dispatch_order(), None]:
            if secret_arn is not None:
                body = {"installation": secret_arn, "watch_started": now.isoformat()}
                batch.append({"Id": str(len(batch)), "MessageBody": json.dumps(body)})
            if batch and (len(batch) == 10 or secret_arn is None):
                with aws_call("sqs:SendMessageBatch", self.config.queue_url):
                    answer = sqs.send_message_batch(QueueUrl=self.config.queue_url, Entries=batch)
                if answer.get("Failed"):
                    codes = sorted({entry.get("Code", "?") for entry in answer["Failed"]})
                    raise RuntimeError(
                        f"SQS refused {len(answer['Failed'])} of the watch's messages "
                        f"({', '.join(codes)}). Fix: check the watch queue's policy and KMS key; "
                        "the schedule runs the watch again."
                    )
                dispatched += len(batch)
                batch = []
        metrics.add_metric("InstallationsDispatched", MetricUnit.Count, dispatched)
        logger.info("Watch dispatched", installations=dispatched)
        return dispatched

    def watch_one(
        self, secret_arn: str, *, budget: timedelta, now: datetime | None = None
    ) -> InstallationHealth:
        """Check one installation and act on it (renewal due, metrics, alert). A check that has
        not finished within ``budget`` is reported as unchecked with that cause."""
        now = now or datetime.now(UTC)
        pool = ThreadPoolExecutor(max_workers=1)
        running = pool.submit(self.health_check.check, secret_arn, now=now)
        try:
            health = running.result(timeout=budget.total_seconds())
        except CheckTimeout:
            health = unfinished(secret_arn, now, budget)
        finally:
            pool.shutdown(wait=False)
        report = WatchReport()
        self._act(health, report)
        _count(report)
        return health

    def _act(self, health: InstallationHealth, report: WatchReport) -> None:
        self._renew_if_due(health, report)
        self._delete_retired_keys(health)
        self._remember_ses_reach(health)
        _record(health)
        report.checked.append(health)
        if self._notify(health):
            report.alerts_sent += 1
        logger.info(
            "Installation checked",
            installation=health.installation,
            verdict=health.verdict,
            failing=health.failing,
            unchecked=health.unchecked,
        )

    def installation_secrets(self) -> Iterator[str]:
        """The ARNs of this deployment's installation secrets: named with its prefix and
        carrying its tag (the Kion API key secrets have another prefix)."""
        for entry in self._listed(self.config.secret_prefix):
            yield entry["ARN"]

    def dispatch_order(self) -> list[str]:
        """The installation secrets, those whose Kion API key secret was renewed (or made)
        longest ago first, and before them those whose key secret is not listed under the
        deployment's prefix (shared or imported: age unknown). SQS has no priorities, but a
        standard queue hands messages out roughly in the order they were sent, so the renewals
        that are due tend to start in the first minutes; each installation is still checked
        on its own, so none waits on another's check either way."""
        installations = list(self._listed(self.config.secret_prefix))
        key_prefix = self.config.key_secret_prefix
        if not key_prefix:
            return [entry["ARN"] for entry in installations]
        stored = {
            entry["Name"][len(key_prefix) :]: _renewed_at(entry)
            for entry in self._listed(key_prefix)
        }
        unknown = datetime.min.replace(tzinfo=UTC)

        def key_renewed(entry: dict[str, Any]) -> datetime:
            return stored.get(entry["Name"][len(self.config.secret_prefix) :]) or unknown

        return [entry["ARN"] for entry in sorted(installations, key=key_renewed)]

    def _listed(self, prefix: str) -> Iterator[dict[str, Any]]:
        """The ListSecrets entries of this deployment's secrets named with ``prefix``."""
        request: dict[str, Any] = {
            "Filters": [{"Key": "name", "Values": [prefix]}],
            "MaxResults": 100,
        }
        while True:
            with aws_call("secretsmanager:ListSecrets", prefix):
                page = self._secretsmanager.list_secrets(**request)
            for entry in page.get("SecretList", []):
                tags = {tag.get("Key"): tag.get("Value") for tag in entry.get("Tags", [])}
                if entry.get("Name", "").startswith(prefix) and (
                    tags.get(DEPLOYMENT_TAG) == self.config.deployment
                ):
                    yield entry
            if not page.get("NextToken"):
                return
            request["NextToken"] = page["NextToken"]

    def _renew_if_due(self, health: InstallationHealth, report: WatchReport) -> None:
        """Start the renewal of the installation's Kion API key when it is due (once per key
        secret and run: installations may share a key)."""
        key_secret = health.kion_api_key_secret_id
        finding = health.checks.get("kion_api_key")
        if not (key_secret and finding and finding.ok and health.kion_api_key_renewal_due):
            return
        if key_secret in self._renewal_checked or "kion_api_key_renewal" in health.checks:
            return  # started for another installation, or one is pending (the check judges it)
        self._renewal_checked.add(key_secret)
        try:
            version_id = ApiKeySecret(key_secret, self._secretsmanager).start_renewal()
        except ClientError as error:
            if error_code(error) == "InvalidRequestException":  # a renewal still in progress
                health.checks["kion_api_key_renewal"] = Finding(
                    True, "a renewal of the Kion API key is already in progress"
                )
                return
            health.checks["kion_api_key_renewal"] = Finding(
                False,
                f"the renewal of the Kion API key could not start ({error_code(error)})",
                "Check that rotation is attached to the Kion API key secret with the renewal "
                "function (the stack does this), then wait for the next watch.",
            )
            return
        except RotationError as error:
            health.checks["kion_api_key_renewal"] = Finding(False, error.cause, error.fix)
            return
        report.renewals_started[key_secret] = version_id
        health.checks["kion_api_key_renewal"] = Finding(
            True, f"renewal of the Kion API key started (version {version_id})"
        )
        logger.info("Kion API key renewal started", installation=health.installation)

    def _delete_retired_keys(self, health: InstallationHealth) -> None:
        """Delete the installation's retired keys whose rollback window has passed."""
        if "secret" in health.checks:
            return  # the secret could not be read: nothing to go by
        try:
            outcomes = delete_retired_keys(
                health.secret_id,
                self.health_check.config,
                now=health.checked_at,
                secretsmanager=self._secretsmanager,
                iam=self.health_check.iam,
            )
        except RotationError as error:
            health.checks["retired_key_deletion"] = Finding(
                None, f"retired keys could not be deleted now: {error.cause}", error.fix
            )
            return
        if not outcomes:
            return
        deleted = sorted(key_id for key_id, refusal in outcomes.items() if refusal is None)
        kept = [f"{refusal}" for refusal in outcomes.values() if refusal is not None]
        health.retired_keys_deleted = deleted
        health.checks["retired_key_deletion"] = Finding(
            True,
            "; ".join(
                ([f"deleted {', '.join(deleted)} (rollback window passed)"] if deleted else [])
                + [f"kept: {reason}" for reason in kept]
            ),
        )

    def _remember_ses_reach(self, health: InstallationHealth) -> None:
        """Keep the secret's ``SES_UNREACHABLE_TAG`` in step with this check: set on the first
        day SES SMTP could not be reached (the check stays unchecked), removed once SES answers.
        A tag rather than a metric lookback: the check already reads it in DescribeSecret, it
        is written only on the days the state changes, and it lives and dies with the secret."""
        since, secret_id = health.ses_unreachable_since, health.secret_id
        try:
            if health.ses_reached is False and since is None:
                with aws_call("secretsmanager:TagResource", secret_id):
                    self._secretsmanager.tag_resource(
                        SecretId=secret_id,
                        Tags=[{"Key": SES_UNREACHABLE_TAG, "Value": health.checked_at.isoformat()}],
                    )
            elif health.ses_reached and since is not None:
                with aws_call("secretsmanager:UntagResource", secret_id):
                    self._secretsmanager.untag_resource(
                        SecretId=secret_id, TagKeys=[SES_UNREACHABLE_TAG]
                    )
        except (ClientError, RotationError) as error:
            cause = error.cause if isinstance(error, RotationError) else error_code(error)
            health.checks["ses_reachability"] = Finding(
                None,
                f"could not record on the secret whether SES SMTP was reached ({cause}), so an "
                "SES that stays out of reach is not reported as failing",
                f"Allow secretsmanager:TagResource and UntagResource of tag {SES_UNREACHABLE_TAG} "
                "on the installation secrets in the watch's role (the stack does this).",
            )

    def _notify(self, health: InstallationHealth) -> bool:
        """Tell the topic what ``health`` changes about the installation's incident (see
        ``incidents``); True when a notice was published. Without its incident store (an
        older role, SSM unreachable) a failing installation is still told, every run."""
        if not self.config.alert_topic_arn:
            return False
        now = health.checked_at
        try:
            previous = self.incidents.open_incident(health.installation)
            store_readable = True
        except (ClientError, RotationError) as error:
            logger.warning("Open incidents unreadable", error=type(error).__name__)
            previous, store_readable = None, False
        notice = decide(health, previous, now)
        if notice is None:
            return False
        sns = self._sns or client("sns")
        with aws_call("sns:Publish", self.config.alert_topic_arn):
            sns.publish(
                TopicArn=self.config.alert_topic_arn, Subject=notice.subject, Message=notice.message
            )
        logger.info("Incident told", installation=health.installation, notice=notice.kind)
        if store_readable:
            try:
                self.incidents.keep(health.installation, notice.incident)
            except (ClientError, RotationError) as error:
                logger.warning("Open incident not kept", error=type(error).__name__)
        return True


def unfinished(secret_arn: str, now: datetime, budget: timedelta) -> InstallationHealth:
    """The health of an installation whose checks did not finish in time."""
    health = InstallationHealth(secret_arn, installation_name(secret_arn), now)
    health.checks["watch"] = Finding(
        None,
        f"the checks did not finish within {budget.total_seconds():g} s (Kion or SES did "
        "not answer in time)",
        "Run ses-smtp-rotator status for this installation to see which system hangs.",
    )
    return health


def _renewed_at(entry: dict[str, Any]) -> datetime | None:
    """When a key secret last got a key by rotation, else when it was made: a key stored by
    hand since then looks older than it is, which only moves it earlier in the dispatch."""
    moment = entry.get("LastRotatedDate") or entry.get("CreatedDate")
    if not isinstance(moment, datetime):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _count(report: WatchReport) -> None:
    metrics.add_metric("InstallationsChecked", MetricUnit.Count, len(report.checked))
    metrics.add_metric(
        "InstallationsFailing",
        MetricUnit.Count,
        sum(1 for health in report.checked if health.verdict == FAILING),
    )


def _record(health: InstallationHealth) -> None:
    values: dict[str, tuple[MetricUnit, float]] = {
        "Healthy": (MetricUnit.Count, 1.0 if health.verdict == HEALTHY else 0.0),
        "ChecksFailing": (MetricUnit.Count, float(len(health.failing))),
        "ChecksUnchecked": (MetricUnit.Count, float(len(health.unchecked))),
    }
    if health.days_since_rotation is not None:
        values["DaysSinceRotation"] = (MetricUnit.Count, health.days_since_rotation)
    if health.kion_api_key_days_left is not None:
        values["KionApiKeyDaysLeft"] = (MetricUnit.Count, health.kion_api_key_days_left)
    put_installation_metrics(health.installation, values)
