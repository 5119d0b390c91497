"""Fixtures of the watch's tests: a steady installation named and tagged as the stack names and
tags it, its Kion API key stored with its id, the renewal attached to the key secret (run by the
local rotation service around the real renewal handler), and an alert topic."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from kion_key_world import KeyRenewalWorld, renewal_service
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends
from rotation_world import RotationWorld

from ses_smtp_rotator.local.installation import provision_installation
from ses_smtp_rotator.local.kion_server import KionStandIn
from ses_smtp_rotator.local.moto_rotation import MotoRotateSecretHook
from ses_smtp_rotator.local.rotation_service import in_process_function
from smtp_rotation.config import RotationConfig
from smtp_rotation.health import HealthCheck, HealthLimits
from smtp_rotation.kion_key_handler import lambda_handler as renewal_handler
from smtp_rotation.watch import DEPLOYMENT_TAG, Watch, WatchConfig

DEPLOYMENT = "watched"
PREFIX = "prod/"  # the stand-in names the secrets <name>/ses-smtp-credential
RENEWAL_ARN = f"arn:aws:lambda:us-east-1:{DEFAULT_ACCOUNT_ID}:function:kion-key-renewal"
LIMITS = HealthLimits(
    function_timeout=timedelta(seconds=300),
    rotation_max_age=timedelta(days=35),
    kion_key_renew_after=timedelta(days=30),
)


@dataclass
class WatchedWorld:
    """One installation of deployment ``watched``, and the watch over it."""

    renewal: KeyRenewalWorld
    hook: MotoRotateSecretHook
    topic_arn: str

    @property
    def smtp(self) -> RotationWorld:
        return self.renewal.smtp

    @property
    def kion(self) -> KionStandIn:
        return self.renewal.kion

    def watch(self, limits: HealthLimits = LIMITS) -> Watch:
        config = WatchConfig(DEPLOYMENT, PREFIX, limits, alert_topic_arn=self.topic_arn)
        return Watch(config, HealthCheck(limits, RotationConfig.from_environment()))

    def kion_now(self) -> datetime:
        return datetime.fromtimestamp(self.kion.clock(), UTC)

    def alerts(self) -> list[str]:
        topic = sns_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].topics[self.topic_arn]
        return [message for _, message, *_ in topic.sent_notifications]

    def age_kion_key(self, days: float) -> None:
        """The stored Kion key was made ``days`` earlier (on the stand-in's clock)."""
        key_id = self.renewal.current()["api_key_id"]
        self.kion.api_keys.records[key_id].created_at -= days * 86400


@pytest.fixture
def kion_clock(kion: KionStandIn) -> Iterator[None]:
    yield
    kion.clock = __import__("time").time  # the session's stand-in keeps the real clock


@pytest.fixture
def make_watched(
    aws: None, kion: KionStandIn, smtp: Any, rotation_service: Any, kion_clock: None
) -> Callable[..., WatchedWorld]:
    def make(**options: Any) -> WatchedWorld:
        installation = provision_installation(kion, smtp, adopt=False, name="prod", **options)
        secretsmanager = boto3.client("secretsmanager")
        secretsmanager.tag_resource(
            SecretId=installation.secret_id, Tags=[{"Key": DEPLOYMENT_TAG, "Value": DEPLOYMENT}]
        )
        world = RotationWorld(installation, kion, smtp, rotation_service)
        renewal = KeyRenewalWorld(world, renewal_service())
        key_id, api_key = next(iter(kion.api_keys.items()))
        renewal.store_key(api_key, key_id)
        hook = MotoRotateSecretHook(in_process_function(renewal_handler), RENEWAL_ARN).install()
        secretsmanager.rotate_secret(
            SecretId=installation.kion_api_key_secret_id,
            RotationLambdaARN=RENEWAL_ARN,
            RotateImmediately=False,
        )
        topic_arn = boto3.client("sns").create_topic(Name="alerts")["TopicArn"]
        return WatchedWorld(renewal, hook, topic_arn)

    return make


@pytest.fixture
def watched(make_watched: Callable[..., WatchedWorld]) -> Iterator[WatchedWorld]:
    world = make_watched()
    yield world
    world.hook.wait_idle(timeout=30)
    world.hook.uninstall()


def key_secret_value(world: WatchedWorld) -> dict[str, Any]:
    return json.loads(
        world.smtp.secretsmanager.get_secret_value(
            SecretId=world.renewal.secret_id, VersionStage="AWSCURRENT"
        )["SecretString"]
    )
