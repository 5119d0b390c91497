"""A Kion installation on loopback servers, and what tests observe about it.

Everything here talks to real servers: moto for AWS, the SES SMTP stand-in over TLS, the Kion
stand-in over HTTPS. Nothing in the rotation function is replaced; a test may give it a virtual
clock to wait on (:meth:`RotationWorld.wait_on_virtual_time`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.exceptions import JsonRESTError
from moto.iam.models import iam_backends
from moto.secretsmanager.models import FakeSecret, secretsmanager_backends

from ses_smtp_rotator.functions.retired_keys import RetiredKey, retired_keys
from ses_smtp_rotator.functions.services.ses_hosts import ses_smtp_host
from ses_smtp_rotator.functions.services.ses_smtp import SmtpEndpoint, try_login
from ses_smtp_rotator.functions.smtp_rotation import handler
from ses_smtp_rotator.functions.smtp_rotation.steps import Rotation
from ses_smtp_rotator.local.installation import LocalInstallation
from ses_smtp_rotator.local.kion_server import KionStandIn
from ses_smtp_rotator.local.rotation_service import STEPS, LocalRotationService
from ses_smtp_rotator.local.smtp_server import SesSmtpRegions, SesSmtpServer


@contextmanager
def aws_refuses(client: Any, operation: str) -> Iterator[None]:
    """While the block runs, AWS answers ``operation`` on ``client`` with AccessDenied."""
    service = client.meta.service_model.service_id.hyphenize()
    event = f"before-call.{service}.{operation}"

    def denied(**_: object) -> None:
        error = {"Code": "AccessDeniedException", "Message": "not authorized"}
        raise ClientError({"Error": error}, operation)

    client.meta.events.register(event, denied, unique_id=f"refuse-{operation}")
    try:
        yield
    finally:
        client.meta.events.unregister(event, unique_id=f"refuse-{operation}")


@dataclass
class VirtualClock:
    """A clock that only moves when something sleeps on it: waits take no real time. Like
    ``time.monotonic``, its origin is arbitrary, so only differences of its readings mean
    anything."""

    now: float = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


@dataclass
class RotationWorld:
    installation: LocalInstallation
    kion: KionStandIn
    smtp: SesSmtpServer
    service: LocalRotationService
    iam: Any = field(default_factory=lambda: boto3.client("iam"))
    secretsmanager: Any = field(default_factory=lambda: boto3.client("secretsmanager"))
    other_regions: SesSmtpRegions | None = None
    account_id: str = DEFAULT_ACCOUNT_ID  # the account of the installation's IAM user

    @property
    def secret_id(self) -> str:
        return self.installation.secret_id

    # -- acting ---------------------------------------------------------------------------

    def start(self, token: str | None = None) -> str:
        return self.service.start(self.secret_id, token)

    def step(self, step: str, token: str) -> None:
        self.service.invoke_step(self.secret_id, token, step)

    def rotate(self, token: str | None = None, *, retries: int = 0) -> str:
        return self.service.rotate(self.secret_id, token, retries=retries)

    def run_steps(self, token: str, steps: tuple[str, ...] = STEPS) -> None:
        for step in steps:
            self.step(step, token)

    # -- observing ------------------------------------------------------------------------

    def kion_credential(self) -> tuple[str, str]:
        return self.kion.app_config["smtp_username"], self.kion.app_config["smtp_password"]

    def authenticates(self, username: str, password: str) -> bool:
        endpoint = SmtpEndpoint(
            self.smtp.host, self.smtp.port, self.smtp.implicit_tls, self.smtp.ca_pem, timeout=5
        )
        return try_login(endpoint, username, password)

    def kion_authenticates(self) -> bool:
        """Invariant 1: the credential Kion is configured with works against SES."""
        return self.authenticates(*self.kion_credential())

    def ses_at(self, host: str) -> SesSmtpServer | None:
        """The SES double that answers at ``host`` (an SES host name of its region, or the
        loopback address the secret proves at), if any does."""
        servers = [self.smtp, *(self.other_regions.servers.values() if self.other_regions else ())]
        ses_host = ses_smtp_host(host)
        for server in servers:
            if host == server.host or (ses_host and ses_host.region == server.region):
                return server
        return None

    def ses_at_kion_host(self) -> SesSmtpServer | None:
        """The SES double that answers where Kion sends (its smtp_host), if any does."""
        return self.ses_at(str(self.kion.app_config.get("smtp_host") or ""))

    def kion_outcome(self) -> str | None:
        """What SES at Kion's own host answers to Kion's credential now; None when Kion sends
        through a host outside this world (no SES name, no double: a relay of its own)."""
        host = str(self.kion.app_config.get("smtp_host") or "")
        server = self.ses_at(host)
        if server is None:
            return "no SES at Kion's host" if ses_smtp_host(host) else None
        return server.check_credential(*self.kion_credential())

    def kion_works_where_it_sends(self) -> bool:
        """Invariant 1 at Kion's own host: SES there accepts Kion's configured credential."""
        return self.kion_outcome() == "accepted"

    # What the world is observed to hold is read from moto's state, as its API would answer,
    # without the API's round trip: the safety suite observes after every step.

    def _stored_secret(self) -> FakeSecret:
        region = self.secretsmanager.meta.region_name
        return secretsmanager_backends[DEFAULT_ACCOUNT_ID][region].secrets[self.secret_id]

    def _stored_keys(self) -> list[Any]:
        backend = iam_backends[self.account_id]["aws"]
        return backend.list_access_keys(self.installation.iam_user_name)

    def access_key_ids(self) -> set[str]:
        return {key.access_key_id for key in self._stored_keys()}

    def stages(self) -> dict[str, list[str]]:
        versions = self._stored_secret().versions
        return {
            version_id: list(version["version_stages"]) for version_id, version in versions.items()
        }

    def version_fields(self, **selector: str) -> dict[str, Any]:
        """The fields of one version; a ClientError, as the API's, when it has none."""
        region = self.secretsmanager.meta.region_name
        try:
            value = secretsmanager_backends[DEFAULT_ACCOUNT_ID][region].get_secret_value(
                self.secret_id, selector.get("VersionId"), selector.get("VersionStage")
            )
        except JsonRESTError as refused:
            error = {"Code": refused.error_type, "Message": refused.message}
            raise ClientError({"Error": error}, "GetSecretValue") from None
        return json.loads(value["SecretString"])

    def current(self) -> dict[str, Any]:
        return self.version_fields(VersionStage="AWSCURRENT")

    def current_version_id(self) -> str:
        return next(vid for vid, stages in self.stages().items() if "AWSCURRENT" in stages)

    def backdate_keys(self, seconds: float = 86400) -> None:
        """Make the user's existing keys look created ``seconds`` ago (long propagated)."""
        backend = iam_backends[self.account_id]["aws"]
        for access_key_id in self.access_key_ids():
            key = backend.access_keys[access_key_id]
            key.create_date = key.create_date - timedelta(seconds=seconds)

    def key_statuses(self) -> dict[str, str]:
        """Each access key of the user with its IAM status (Active or Inactive)."""
        return {key.access_key_id: key.status for key in self._stored_keys()}

    def tags(self) -> dict[str, str]:
        return {tag["Key"]: tag["Value"] for tag in self._stored_secret().tags or []}

    def retired_keys(self) -> dict[str, RetiredKey]:
        """The retirement records on the installation secret, by access key id."""
        return retired_keys(self.tags())

    def backdate_retirements(self, days: float = 8) -> None:
        """Make every retired key look deactivated ``days`` ago (its window passed, by
        default: the grace window is 7 days)."""
        for record in self.retired_keys().values():
            earlier = replace(record, deactivated_at=record.deactivated_at - timedelta(days=days))
            self.secretsmanager.tag_resource(
                SecretId=self.secret_id,
                Tags=[{"Key": earlier.tag_key, "Value": earlier.tag_value()}],
            )

    def put_kion_api_key(self, value: str) -> None:
        self.secretsmanager.put_secret_value(
            SecretId=self.installation.kion_api_key_secret_id, SecretString=value
        )

    def edit_current(self, **changes: Any) -> None:
        """Store a new AWSCURRENT version with some fields changed, as an operator would."""
        fields = {**self.current(), **changes}
        self.secretsmanager.put_secret_value(
            SecretId=self.secret_id,
            SecretString=json.dumps({k: v for k, v in fields.items() if v is not ...}),
        )

    def wait_on_virtual_time(
        self,
        token: str,
        monkeypatch: pytest.MonkeyPatch,
        at_each_pause: Callable[[], None] = lambda: None,
    ) -> VirtualClock:
        """From now on, the rotation's waits (Rotation's clock and sleep) and SES's view of key
        ages run on one virtual clock, started when ``token``'s new key was made: when SES
        accepts the key then depends on the logins' schedule alone, never on the machine.
        ``at_each_pause`` runs whenever the rotation pauses, before the clock moves on."""
        clock = VirtualClock()
        record = self.smtp.key_lookup(self.version_fields(VersionId=token)["username"])
        assert record is not None, "the pending version's key is not in IAM"
        made = record.created_at.timestamp()

        def pause(seconds: float) -> None:
            at_each_pause()
            clock.sleep(seconds)

        monkeypatch.setattr(
            handler, "Rotation", partial(Rotation, clock=clock.monotonic, sleep=pause)
        )
        origin = clock.now
        monkeypatch.setattr(self.smtp, "clock", lambda: made + clock.now - origin)
        return clock

    def converged(self) -> bool:
        """Invariant 4's end state: Kion and AWSCURRENT hold the same working key, and no version
        is labelled AWSPENDING (not even AWSCURRENT). (The safety suite's SafetyRun checks more.)"""
        current = self.current()
        kion_username, kion_password = self.kion_credential()
        pending = any("AWSPENDING" in stages for stages in self.stages().values())
        return (
            current["username"] == kion_username
            and current["password"] == kion_password
            and kion_username in self.access_key_ids()
            and not pending
            and self.kion_authenticates()
        )
