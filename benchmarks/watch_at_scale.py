"""The daily watch over a fleet of N installations, on a virtual clock.

The real watch runs: ``watch/handler.lambda_handler`` is invoked once as the schedule invokes it
(it lists and dispatches) and then once per SQS message as the queue's event source invokes it
(``max_concurrency`` at a time, each message delivered again after a failure and kept in the
dead-letter queue after the queue's last delivery), with ``daily_watch``, ``health``, the Kion
clients with urllib3's own ``Retry`` and the renewal's start (``ApiKeySecret.start_renewal``) as
deployed. Only the outside systems are light in-process doubles whose calls cost virtual time:

- Secrets Manager: ListSecrets (pages of 100, name prefix), DescribeSecret (stages, tags, dates),
  GetSecretValue by stage or version, ListSecretVersionIds, RotateSecret (a pending version;
  refused while one is pending, as Secrets Manager refuses a rotation in progress),
  TagResource/UntagResource; by name or ARN; each call ``AWS_CALL`` seconds.
- IAM ListAccessKeys, SNS Publish, SQS SendMessageBatch: their request and reply shapes.
- Kion: the app-config and App API key routes with bearer checks; a reachable Kion answers in
  ``KION_ANSWER``; an unreachable one drops the connection attempt, which costs the configured
  connect timeout; a hanging one accepts it and never answers, which costs the read timeout. The
  client's own ``urllib3.Retry`` decides how often each is tried and how long it backs off, so
  the costs follow KION_TIMEOUT_SECONDS, KION_RETRIES and KION_RETRY_BACKOFF_SECONDS.
- SES SMTP: a login accepted in ``SES_LOGIN`` seconds; out of reach, the SMTP timeout passes and
  the connection error ``services/ses_smtp`` raises comes back.

Over several days (``simulate(days=...)``) a day passing ends the renewals started (no longer
pending) and moves the watch's own records one day into the past.

They share no permissions, throttling, eventual consistency or KMS with the real services; the
renewal started is not run (Secrets Manager would invoke the renewal function). The simulated
queue hands messages out exactly in the order sent, where a standard SQS queue does so roughly.
``watch_one`` waits for its check in a thread pool with the budget as timeout; here the pool runs
the check at once and gives up, as the real wait would, when the check took longer in virtual
time than the budget (the clock then reads the moment it gave up).
"""

# ruff: noqa: N803 (the doubles take boto3's parameter names: SecretId, VersionStage, ...)
from __future__ import annotations

import concurrent.futures
import contextlib
import heapq
import io
import itertools
import json
import logging
import os
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from types import SimpleNamespace
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

from botocore.exceptions import ClientError
from urllib3.exceptions import ConnectTimeoutError, ReadTimeoutError

from ses_smtp_rotator.functions.errors import SmtpConnectionError
from ses_smtp_rotator.functions.services import aws_clients, kion_settings
from ses_smtp_rotator.functions.services.secrets_store import CURRENT, PENDING
from ses_smtp_rotator.functions.services.smtp_password import derive_smtp_password
from ses_smtp_rotator.functions.telemetry import logger
from ses_smtp_rotator.functions.watch import daily_watch, handler, health
from ses_smtp_rotator.functions.watch.daily_watch import DEPLOYMENT_TAG

# Virtual seconds each outside call takes when it is answered.
AWS_CALL = 0.03
# The subject of a watch notice that tells an installation failing (new, changed or repeat).
ALERT_SUBJECT = re.compile(r"^\[(new|changed|repeat)\] Kion installation (?P<installation>\S+): ")
KION_ANSWER = 0.25
SES_LOGIN = 0.3
# The watch function as the stack deploys it (cdk/watch.py).
FUNCTION_TIMEOUT = 900.0
MEMORY_MB = 256
CONCURRENCY = 8
DELIVERIES = 2

REACHABLE, UNREACHABLE, HANGING = "reachable", "unreachable", "hanging"
DEPLOYMENT = "fleet"
SECRET_PREFIX = f"ses-smtp-rotator/{DEPLOYMENT}/smtp/"
KEY_PREFIX = f"ses-smtp-rotator/{DEPLOYMENT}/kion-api-key/"
ACCOUNT = "123456789012"
TOPIC_ARN = f"arn:aws:sns:us-east-1:{ACCOUNT}:alerts"
QUEUE_URL = f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/watch"
KEY_LIFESPAN_DAYS = 14
# The function's tunables (config.RotationConfig, key_life): the stack leaves them unset on the
# watch, so it runs with their defaults; the simulation does too unless told otherwise.
TUNABLES = (
    "SES_ACCEPT_TIMEOUT_SECONDS",
    "SES_ACCEPT_LOGINS",
    "SES_ACCEPT_MIN_SPAN_SECONDS",
    "FUNCTION_TIMEOUT_SECONDS",
    "SMTP_TIMEOUT_SECONDS",
    "KION_TIMEOUT_SECONDS",
    "KION_RETRIES",
    "KION_RETRY_BACKOFF_SECONDS",
    "KION_API_KEY_CACHE_SECONDS",
    "KION_API_KEY_RENEW_AFTER_DAYS",
)


@dataclass
class VirtualClock:
    now: float = 0.0

    def advance(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


@dataclass
class SimulatedKion:
    """One Kion: how it answers, its SMTP settings and its App API key."""

    behaviour: str
    smtp_username: str
    api_key: str
    api_key_id: int
    key_created: datetime

    def answer(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict]:
        if headers.get("Authorization") != f"Bearer {self.api_key}":
            return 401, {"status": 401, "message": "invalid API key"}
        if method == "GET" and path == kion_settings.APP_CONFIG_PATH:
            return 200, {
                "status": 200,
                "data": {
                    "smtp_enabled": True,
                    "smtp_host": "email-smtp.us-east-1.amazonaws.com",
                    "smtp_port": 587,
                    "smtp_from": "kion@example.com",
                    "smtp_username": self.smtp_username,
                    "smtp_password": "",
                    "smtp_skip_verify": False,
                    "app_api_key_lifespan": KEY_LIFESPAN_DAYS,
                },
            }
        if method == "GET" and path == f"/api/v3/app-api-key/{self.api_key_id}":
            created = self.key_created.strftime("%Y-%m-%dT%H:%M:%S+0000")
            return 200, {
                "status": 200,
                "data": {"id": self.api_key_id, "name": "rotator", "created_at": created},
            }
        return 404, {"status": 404, "message": "not found"}


@dataclass
class Installation:
    name: str
    kion: SimulatedKion
    renewal_due: bool
    failing: bool  # Kion sends with a key someone typed in by hand
    ses_reachable: bool = True

    @property
    def secret_name(self) -> str:
        return SECRET_PREFIX + self.name

    @property
    def key_secret_name(self) -> str:
        return KEY_PREFIX + self.name


def _client_error(code: str, operation: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


@dataclass
class _Secret:
    name: str
    arn: str
    created: datetime
    tags: list[dict[str, str]]
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_rotated: datetime | None = None

    def stages(self) -> dict[str, list[str]]:
        return {vid: list(v["stages"]) for vid, v in self.versions.items() if v["stages"]}


class SecretsManagerDouble:
    """The Secrets Manager calls the watch makes, on a virtual clock."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.secrets: dict[str, _Secret] = {}
        self._by_arn: dict[str, _Secret] = {}
        self.renewals: list[tuple[str, float]] = []  # (key secret, virtual time RotateSecret ran)
        self._versions = itertools.count(1)

    def add(self, name: str, value: str, *, created: datetime, rotated: datetime | None) -> str:
        arn = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{name}-AbCdEf"
        secret = _Secret(name, arn, created, [{"Key": DEPLOYMENT_TAG, "Value": DEPLOYMENT}])
        secret.versions[f"v{next(self._versions)}"] = {
            "stages": [CURRENT],
            "string": value,
            "created": created,
        }
        secret.last_rotated = rotated
        self.secrets[name] = secret
        self._by_arn[arn] = secret
        return arn

    def _find(self, secret_id: str, operation: str) -> _Secret:
        self.clock.advance(AWS_CALL)
        secret = self.secrets.get(secret_id) or self._by_arn.get(secret_id)
        if secret is None:
            raise _client_error("ResourceNotFoundException", operation)
        return secret

    def list_secrets(self, *, Filters: list, MaxResults: int, NextToken: str = "0") -> dict:
        self.clock.advance(AWS_CALL)
        prefix = Filters[0]["Values"][0]
        names = sorted(name for name in self.secrets if name.startswith(prefix))
        start = int(NextToken)
        page = [self._listed(self.secrets[name]) for name in names[start : start + MaxResults]]
        answer: dict[str, Any] = {"SecretList": page}
        if start + MaxResults < len(names):
            answer["NextToken"] = str(start + MaxResults)
        return answer

    @staticmethod
    def _listed(secret: _Secret) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "ARN": secret.arn,
            "Name": secret.name,
            "CreatedDate": secret.created,
            "Tags": list(secret.tags),
            "SecretVersionsToStages": secret.stages(),
        }
        if secret.last_rotated:
            entry["LastRotatedDate"] = secret.last_rotated
        return entry

    def describe_secret(self, *, SecretId: str) -> dict:
        secret = self._find(SecretId, "DescribeSecret")
        return {**self._listed(secret), "VersionIdsToStages": secret.stages()}

    def get_secret_value(
        self, *, SecretId: str, VersionStage: str = "", VersionId: str = ""
    ) -> dict:
        secret = self._find(SecretId, "GetSecretValue")
        stage = VersionStage or (CURRENT if not VersionId else "")
        for version_id, version in secret.versions.items():
            if version_id == VersionId or (stage and stage in version["stages"]):
                if version["string"] is None:
                    break
                return {
                    "ARN": secret.arn,
                    "Name": secret.name,
                    "VersionId": version_id,
                    "SecretString": version["string"],
                    "VersionStages": list(version["stages"]),
                    "CreatedDate": version["created"],
                }
        raise _client_error("ResourceNotFoundException", "GetSecretValue")

    def list_secret_version_ids(self, *, SecretId: str) -> dict:
        secret = self._find(SecretId, "ListSecretVersionIds")
        return {
            "Versions": [
                {"VersionId": vid, "VersionStages": v["stages"], "CreatedDate": v["created"]}
                for vid, v in secret.versions.items()
            ]
        }

    def rotate_secret(self, *, SecretId: str) -> dict:
        secret = self._find(SecretId, "RotateSecret")
        stages = secret.versions.values()
        if any(PENDING in v["stages"] and CURRENT not in v["stages"] for v in stages):
            raise _client_error("InvalidRequestException", "RotateSecret")
        version_id = f"v{next(self._versions)}"
        secret.versions[version_id] = {"stages": [PENDING], "string": None, "created": _now()}
        self.renewals.append((secret.name, self.clock.now))
        return {"ARN": secret.arn, "Name": secret.name, "VersionId": version_id}

    def tag_resource(self, *, SecretId: str, Tags: list[dict[str, str]]) -> dict:
        secret = self._find(SecretId, "TagResource")
        keys = {tag["Key"] for tag in Tags}
        secret.tags = [t for t in secret.tags if t["Key"] not in keys] + list(Tags)
        return {}

    def untag_resource(self, *, SecretId: str, TagKeys: list[str]) -> dict:
        secret = self._find(SecretId, "UntagResource")
        secret.tags = [t for t in secret.tags if t["Key"] not in TagKeys]
        return {}


@dataclass
class IamDouble:
    clock: VirtualClock
    keys: dict[str, str] = field(default_factory=dict)  # user -> its one Active key's id

    def list_access_keys(self, *, UserName: str) -> dict:
        self.clock.advance(AWS_CALL)
        if UserName not in self.keys:
            raise _client_error("NoSuchEntity", "ListAccessKeys", 404)
        return {
            "AccessKeyMetadata": [
                {
                    "UserName": UserName,
                    "AccessKeyId": self.keys[UserName],
                    "Status": "Active",
                    "CreateDate": _now() - timedelta(days=3),
                }
            ]
        }

    def get_access_key_last_used(self, *, AccessKeyId: str) -> dict:
        """As IAM answers for a key with no signed request on record."""
        self.clock.advance(AWS_CALL)
        user = next((user for user, key in self.keys.items() if key == AccessKeyId), None)
        if user is None:
            raise _client_error("NoSuchEntity", "GetAccessKeyLastUsed", 404)
        return {"UserName": user, "AccessKeyLastUsed": {"ServiceName": "N/A", "Region": "N/A"}}


@dataclass
class SnsDouble:
    clock: VirtualClock
    subjects: list[str] = field(default_factory=list)

    def publish(self, *, TopicArn: str, Subject: str, Message: str) -> dict:
        self.clock.advance(AWS_CALL)
        self.subjects.append(Subject)
        return {"MessageId": str(len(self.subjects))}


@dataclass
class SsmDouble:
    """Parameter Store as the watch keeps its open incidents there."""

    clock: VirtualClock
    parameters: dict[str, str] = field(default_factory=dict)

    def get_parameter(self, *, Name: str) -> dict:
        self.clock.advance(AWS_CALL)
        if Name not in self.parameters:
            raise _client_error("ParameterNotFound", "GetParameter", 400)
        return {"Parameter": {"Name": Name, "Value": self.parameters[Name]}}

    def put_parameter(self, *, Name: str, Value: str, **_: object) -> dict:
        self.clock.advance(AWS_CALL)
        self.parameters[Name] = Value
        return {"Version": 1}

    def delete_parameter(self, *, Name: str) -> dict:
        self.clock.advance(AWS_CALL)
        if self.parameters.pop(Name, None) is None:
            raise _client_error("ParameterNotFound", "DeleteParameter", 400)
        return {}


@dataclass
class SqsDouble:
    clock: VirtualClock
    bodies: list[str] = field(default_factory=list)

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, str]]) -> dict:
        self.clock.advance(AWS_CALL)
        self.bodies.extend(entry["MessageBody"] for entry in Entries)
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}


@dataclass
class _Response:
    status: int
    data: bytes


class KionNetwork:
    """urllib3's PoolManager as the Kion clients see it: each request goes to the Kion its URL
    names, and costs what that Kion's behaviour costs on the virtual clock."""

    def __init__(self, clock: VirtualClock, kions: dict[str, SimulatedKion]) -> None:
        self.clock = clock
        self.kions = kions

    def pool_manager(self, *, ssl_context: Any, timeout: Any, retries: Any) -> Any:
        network = self

        class PoolManager:
            def request(
                self, method: str, url: str, body: Any = None, headers: Any = None
            ) -> _Response:
                return network.request(method, url, headers or {}, timeout, retries)

        return PoolManager()

    def request(self, method: str, url: str, headers: dict, timeout: Any, retry: Any) -> _Response:
        parts = urlsplit(url)
        kion = self.kions[parts.hostname or ""]
        while True:
            if kion.behaviour == UNREACHABLE:  # the connection attempt is dropped
                self.clock.advance(timeout.connect_timeout)
                error: Exception = ConnectTimeoutError(None, f"{parts.hostname}: timed out")
            elif kion.behaviour == HANGING:  # connected, and no answer ever comes
                self.clock.advance(AWS_CALL + timeout.read_timeout)
                error = ReadTimeoutError(None, url, "Read timed out.")
            else:
                self.clock.advance(KION_ANSWER)
                status, reply = kion.answer(method, parts.path, headers)
                return _Response(status, json.dumps(reply).encode())
            retry = retry.increment(method, url, error=error)  # MaxRetryError once exhausted
            self.clock.advance(retry.get_backoff_time())


@dataclass
class FleetFigures:
    """What one simulated watch found and did."""

    installations: int
    day: int
    unreachable: int
    hanging: int
    due_reachable: int
    renewals_started_due_reachable: int
    failing_reachable: int
    """Installations whose failure the watch can see: Kion answers and sends with a key typed
    in by hand, or (from the second day) SES SMTP stays out of reach."""
    alerts_for_failing: int
    alerts_for_others: int
    unchecked_without_reason: int
    dead_lettered: int
    longest_invocation: float
    dispatch_seconds: float
    invocation_seconds: float  # all invocations together: what Lambda bills
    invocations: int
    watch_hours: float  # from the schedule's invocation to the last message handled
    last_due_renewal_minutes: float
    ses_out_of_reach: int = 0
    function_timeout: float = FUNCTION_TIMEOUT
    memory_mb: int = MEMORY_MB
    concurrency: int = CONCURRENCY

    @property
    def gb_seconds(self) -> float:
        return self.invocation_seconds * self.memory_mb / 1024

    def line(self) -> str:
        return (
            f"watch at {self.installations} installations: renewals started for due reachable "
            f"keys {self.renewals_started_due_reachable} of {self.due_reachable}, alerts for "
            f"failing installations {self.alerts_for_failing} of {self.failing_reachable}, "
            f"installations unchecked without a reason {self.unchecked_without_reason}, longest "
            f"Lambda invocation {self.longest_invocation:.0f} s of {self.function_timeout:.0f} s"
        )

    def detail(self) -> str:
        return (
            f"{self.unreachable} Kions unreachable, {self.hanging} hanging; "
            f"{self.invocations} invocations, {self.invocation_seconds:.0f} s = "
            f"{self.gb_seconds:.0f} GB-s at {self.memory_mb} MB; dispatch "
            f"{self.dispatch_seconds:.0f} s; all checked {self.watch_hours:.2f} h after the "
            f"schedule with {self.concurrency} at once; last due renewal started at "
            f"{self.last_due_renewal_minutes:.1f} min; alerts for others {self.alerts_for_others}; "
            f"dead-lettered {self.dead_lettered}"
        )


@dataclass
class _VirtualFuture:
    clock: VirtualClock
    began: float
    took: float
    value: Any = None
    error: BaseException | None = None

    def result(self, timeout: float | None = None) -> Any:
        if timeout is not None and self.took > timeout:
            self.clock.now = self.began + timeout  # the wait gave up; the check runs on alone
            raise concurrent.futures.TimeoutError
        if self.error is not None:
            raise self.error
        return self.value


class _VirtualPool:
    """The thread pool ``watch_one`` waits for its check in, on the virtual clock."""

    def __init__(self, clock: VirtualClock, max_workers: int = 1) -> None:
        self.clock = clock

    def submit(self, check: Any, *args: Any, **kwargs: Any) -> _VirtualFuture:
        began = self.clock.now
        try:
            value = check(*args, **kwargs)
        except Exception as error:
            return _VirtualFuture(self.clock, began, self.clock.now - began, error=error)
        return _VirtualFuture(self.clock, began, self.clock.now - began, value)

    def shutdown(self, wait: bool = True) -> None:
        """Nothing runs on."""


class _VirtualContext:
    """The Lambda context: the time left runs on the virtual clock."""

    function_name = "watch"
    memory_limit_in_mb = MEMORY_MB
    invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:watch"
    aws_request_id = "simulated"

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.started = clock.now

    def get_remaining_time_in_millis(self) -> int:
        return int((FUNCTION_TIMEOUT - (self.clock.now - self.started)) * 1000)


def _now() -> datetime:
    return datetime.now(UTC)


class Fleet:
    """N installations with Kions that answer, drop connections or hang, and their doubles."""

    def __init__(
        self,
        count: int,
        *,
        unreachable: float = 0.10,
        hanging: float = 0.02,
        due: float = 0.3,
        failing: float = 0.05,
        ses_unreachable: float = 0.0,
        seed: int = 25,
    ) -> None:
        self.clock = VirtualClock()
        self.secretsmanager = SecretsManagerDouble(self.clock)
        self.iam = IamDouble(self.clock)
        self.sns = SnsDouble(self.clock)
        self.sqs = SqsDouble(self.clock)
        self.ssm = SsmDouble(self.clock)
        rng = random.Random(seed)
        behaviours = [UNREACHABLE] * round(count * unreachable) + [HANGING] * round(count * hanging)
        behaviours += [REACHABLE] * (count - len(behaviours))
        rng.shuffle(behaviours)
        now = _now()
        self.installations: list[Installation] = []
        self.by_access_key: dict[str, Installation] = {}
        kions: dict[str, SimulatedKion] = {}
        for number, behaviour in enumerate(behaviours, start=1):
            name = f"kion-{number:05d}"
            access_key_id = f"AKIASIM{number:013d}"
            renewal_due = rng.random() < due
            key_created = now - timedelta(days=10 if renewal_due else 2, hours=rng.random())
            is_failing = rng.random() < failing
            kion = SimulatedKion(
                behaviour,
                smtp_username="AKIAHANDEDITED000000" if is_failing else access_key_id,
                api_key=f"app_{number}_{rng.getrandbits(64):016x}",
                api_key_id=number,
                key_created=key_created,
            )
            installation = Installation(
                name, kion, renewal_due, is_failing, ses_reachable=rng.random() >= ses_unreachable
            )
            self.installations.append(installation)
            self.by_access_key[access_key_id] = installation
            host = f"{name}.kion.example"
            kions[host] = kion
            key_value = json.dumps({"api_key": kion.api_key, "api_key_id": number})
            self.secretsmanager.add(
                installation.key_secret_name, key_value, created=key_created, rotated=None
            )
            user = f"ses-smtp-{name}"
            self.iam.keys[user] = access_key_id
            secret_value = {
                "username": access_key_id,
                "password": derive_smtp_password(f"simulated/{number:036d}", "us-east-1"),
                "ses_region": "us-east-1",
                "iam_user_name": user,
                "kion_url": f"https://{host}",
                "kion_api_key_secret_id": installation.key_secret_name,
            }
            self.secretsmanager.add(
                installation.secret_name,
                json.dumps(secret_value),
                created=now - timedelta(days=3),
                rotated=now - timedelta(days=3),
            )
        self.network = KionNetwork(self.clock, kions)

    @contextlib.contextmanager
    def installed(
        self, checked: list[health.InstallationHealth], tunables: dict[str, str]
    ) -> Iterator[None]:
        """The watch's outside systems replaced by this fleet's doubles, its configuration as
        the stack sets it (with ``tunables``, e.g. KION_TIMEOUT_SECONDS, over the defaults), and
        each installation's health collected into ``checked``."""
        clients = {
            "secretsmanager": self.secretsmanager,
            "iam": self.iam,
            "sns": self.sns,
            "sqs": self.sqs,
            "ssm": self.ssm,
        }
        watch_one = daily_watch.Watch.watch_one

        def collecting(watch: Any, *args: Any, **kwargs: Any) -> health.InstallationHealth:
            found = watch_one(watch, *args, **kwargs)
            checked.append(found)
            return found

        def ses_login(endpoint: Any, username: str, password: str) -> bool:
            if self.by_access_key[username].ses_reachable:
                self.clock.advance(SES_LOGIN)
                return True
            self.clock.advance(endpoint.timeout)
            raise SmtpConnectionError(
                f"Could not talk to the SMTP server at {endpoint} (timed out).",
                "Check that the function can reach it.",
            )

        environment = {
            "DEPLOYMENT_NAME": DEPLOYMENT,
            "INSTALLATION_SECRET_PREFIX": SECRET_PREFIX,
            "KION_API_KEY_SECRET_PREFIX": KEY_PREFIX,
            "ROTATION_FUNCTION_TIMEOUT_SECONDS": "300",
            "ROTATION_MAX_AGE_DAYS": "37",
            "ALERT_TOPIC_ARN": TOPIC_ARN,
            "WATCH_QUEUE_URL": QUEUE_URL,
        }
        level = logger.log_level
        inherited = {name for name in TUNABLES if name in os.environ}
        with (
            mock.patch.dict(os.environ, {**environment, **tunables}),
            mock.patch.object(
                aws_clients, "boto3", SimpleNamespace(client=lambda service, **_: clients[service])
            ),
            mock.patch.object(
                kion_settings, "urllib3", SimpleNamespace(PoolManager=self.network.pool_manager)
            ),
            mock.patch.object(health, "try_login", ses_login),
            mock.patch.object(daily_watch, "ThreadPoolExecutor", partial(_VirtualPool, self.clock)),
            mock.patch.object(daily_watch.Watch, "watch_one", collecting),
            contextlib.redirect_stdout(io.StringIO()),  # the metrics' EMF records
        ):
            for name in inherited - set(tunables):
                del os.environ[name]  # restored by patch.dict
            aws_clients.client.cache_clear()
            handler._config.cache_clear()
            logger.setLevel(logging.CRITICAL)
            try:
                yield
            finally:
                logger.setLevel(level)
                aws_clients.client.cache_clear()
                handler._config.cache_clear()

    def a_day_passes(self) -> None:
        """The renewals started have finished, and what the watch recorded happened a day ago."""
        for secret in self.secretsmanager.secrets.values():
            for version in secret.versions.values():
                version["stages"] = [s for s in version["stages"] if s != PENDING]
            for tag in secret.tags:
                if tag["Key"] == health.SES_UNREACHABLE_TAG:
                    since = datetime.fromisoformat(tag["Value"]) - timedelta(days=1)
                    tag["Value"] = since.isoformat()
        for name, value in self.ssm.parameters.items():  # the open incidents, told a day ago
            incident = json.loads(value)
            for moment in ("opened", "notified"):
                incident[moment] = (
                    datetime.fromisoformat(incident[moment]) - timedelta(days=1)
                ).isoformat()
            self.ssm.parameters[name] = json.dumps(incident)
        self.secretsmanager.renewals.clear()
        self.sns.subjects.clear()
        self.sqs.bodies.clear()


def simulate(
    count: int,
    *,
    days: int = 1,
    tunables: dict[str, str] | None = None,
    checked: list[health.InstallationHealth] | None = None,
    **fleet_options: Any,
) -> FleetFigures:
    """Run the daily watch over ``count`` installations (``fleet_options``: see ``Fleet``) on
    ``days`` days in a row and return the last day's figures; ``checked`` receives what the last
    day found of each installation."""
    fleet = Fleet(count, **fleet_options)
    found: list[health.InstallationHealth] = []
    for day in range(1, days + 1):
        if day > 1:
            fleet.a_day_passes()
        found = []
        figures = _watch_once(fleet, day, tunables or {}, found)
    if checked is not None:
        checked.extend(found)
    return figures


def _watch_once(
    fleet: Fleet, day: int, tunables: dict[str, str], checked: list[health.InstallationHealth]
) -> FleetFigures:
    clock = fleet.clock
    durations: list[float] = []
    handled_at: dict[str, float] = {}  # key secret -> timeline moment its renewal started
    dead_lettered: list[str] = []
    with fleet.installed(checked, tunables):
        began = clock.now
        handler.lambda_handler({"source": "aws.scheduler"}, _VirtualContext(clock))
        dispatch = clock.now - began
        durations.append(dispatch)
        free_at = [dispatch] * CONCURRENCY  # the event source's concurrent pollers
        deliveries = [(body, 1) for body in fleet.sqs.bodies]
        position = 0
        while position < len(deliveries):
            body, delivery = deliveries[position]
            position += 1
            slot = heapq.heappop(free_at)
            began = clock.now
            renewals_before = len(fleet.secretsmanager.renewals)
            record = {"messageId": f"m{position}", "body": body, "eventSource": "aws:sqs"}
            answer = handler.lambda_handler({"Records": [record]}, _VirtualContext(clock))
            took = clock.now - began
            durations.append(took)
            for key_secret, moment in fleet.secretsmanager.renewals[renewals_before:]:
                handled_at[key_secret] = slot + (moment - began)
            heapq.heappush(free_at, slot + took)
            if answer["batchItemFailures"]:
                if delivery < DELIVERIES:
                    deliveries.append((body, delivery + 1))
                else:
                    dead_lettered.append(json.loads(body)["installation"])
    return _figures(fleet, day, checked, durations, handled_at, dead_lettered, max(free_at))


def _figures(
    fleet: Fleet,
    day: int,
    checked: list[health.InstallationHealth],
    durations: list[float],
    renewals: dict[str, float],
    dead_lettered: list[str],
    finished: float,
) -> FleetFigures:
    installations = fleet.installations
    reachable = [i for i in installations if i.kion.behaviour == REACHABLE]
    due = [i for i in reachable if i.renewal_due]
    failing = {
        i.name
        for i in installations
        if (i.failing and i.kion.behaviour == REACHABLE) or (day > 1 and not i.ses_reachable)
    }
    by_name = {h.installation: h for h in checked}
    dead = {name.rsplit(":secret:", 1)[-1].rsplit("-", 1)[0] for name in dead_lettered}
    without_reason = 0
    for installation in installations:
        found = by_name.get(installation.name)
        if found is None:
            without_reason += installation.secret_name not in dead
        elif any(not found.checks[name].summary for name in found.unchecked):
            without_reason += 1
    started = [i for i in due if i.key_secret_name in renewals]
    return FleetFigures(
        installations=len(installations),
        day=day,
        unreachable=sum(1 for i in installations if i.kion.behaviour == UNREACHABLE),
        hanging=sum(1 for i in installations if i.kion.behaviour == HANGING),
        due_reachable=len(due),
        renewals_started_due_reachable=len(started),
        failing_reachable=len(failing),
        alerts_for_failing=sum(1 for name in _alerted(fleet.sns.subjects) if name in failing),
        alerts_for_others=sum(1 for name in _alerted(fleet.sns.subjects) if name not in failing),
        unchecked_without_reason=without_reason,
        dead_lettered=len(dead_lettered),
        longest_invocation=max(durations),
        dispatch_seconds=durations[0],
        invocation_seconds=sum(durations),
        invocations=len(durations),
        watch_hours=finished / 3600,
        last_due_renewal_minutes=max((renewals[i.key_secret_name] for i in started), default=0.0)
        / 60,
        ses_out_of_reach=sum(1 for i in installations if not i.ses_reachable),
    )


def _alerted(subjects: list[str]) -> list[str]:
    """The installations the watch's notices tell as failing (``[new] Kion installation X:
    failing (...)``; a ``[resolved]`` notice tells none)."""
    told = (ALERT_SUBJECT.match(subject) for subject in subjects)
    return [match["installation"] for match in told if match]
