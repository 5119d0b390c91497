"""The watch over one installation of deployment ``watched`` on loopback servers, and what the
watch's tests observe."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kion_key_world import KeyRenewalWorld
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends
from rotation_world import RotationWorld

from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.watch.daily_watch import Watch, WatchConfig
from ses_smtp_rotator.functions.watch.health import HealthCheck, HealthLimits
from ses_smtp_rotator.local.kion_server import KionStandIn
from ses_smtp_rotator.local.moto_rotation import MotoRotateSecretHook

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


def key_secret_value(world: WatchedWorld) -> dict[str, Any]:
    return json.loads(
        world.smtp.secretsmanager.get_secret_value(
            SecretId=world.renewal.secret_id, VersionStage="AWSCURRENT"
        )["SecretString"]
    )
