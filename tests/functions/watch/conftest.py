"""Fixtures of the watch's tests: a steady installation tagged as the stack tags it, its Kion API
key stored with its id, the renewal attached to the key secret (run by the local rotation service
around the real renewal handler), and an alert topic."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from kion_key_world import KeyRenewalWorld, renewal_service
from rotation_world import RotationWorld
from watch_world import DEPLOYMENT, RENEWAL_ARN, WatchedWorld

from ses_smtp_rotator.functions.kion_key_renewal.handler import lambda_handler as renewal_handler
from ses_smtp_rotator.functions.watch.daily_watch import DEPLOYMENT_TAG
from ses_smtp_rotator.local.installation import provision_installation
from ses_smtp_rotator.local.kion_server import KionStandIn
from ses_smtp_rotator.local.moto_rotation import MotoRotateSecretHook
from ses_smtp_rotator.local.rotation_service import in_process_function


@pytest.fixture
def kion_clock(kion: KionStandIn) -> Iterator[None]:
    yield
    kion.clock = time.time  # the session's stand-in keeps the real clock


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
