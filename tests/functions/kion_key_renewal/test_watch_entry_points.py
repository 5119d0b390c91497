"""What the watch calls: the stored key's life (is a renewal due?) and the start of a renewal,
which runs through Secrets Manager's RotateSecret like any rotation."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import boto3
import pytest
import urllib3.util.retry
from kion_key_world import KeyRenewalWorld

from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.errors import KionConnectionError, KionRequestError
from ses_smtp_rotator.functions.installation_secret import InstallationSecret
from ses_smtp_rotator.functions.kion_key_renewal.handler import lambda_handler
from ses_smtp_rotator.functions.kion_key_renewal.key_life import (
    KeyLife,
    KionApiKeyExpiredError,
    stored_key_life,
)
from ses_smtp_rotator.functions.kion_key_renewal.key_secret import ApiKeySecret
from ses_smtp_rotator.local.kion_server import KionStandIn
from ses_smtp_rotator.local.moto_rotation import MotoRotateSecretHook
from ses_smtp_rotator.local.rotation_service import in_process_function

RENEWAL_FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:kion-key-renewal"


@pytest.fixture
def rotate_secret_runs_the_renewal(aws: None) -> Iterator[MotoRotateSecretHook]:
    """moto's RotateSecret, for the renewal function, runs it as Secrets Manager would."""
    hook = MotoRotateSecretHook(in_process_function(lambda_handler), RENEWAL_FUNCTION).install()
    yield hook
    hook.wait_idle(timeout=30)
    hook.uninstall()


def test_a_key_past_half_its_life_is_due_and_a_started_renewal_replaces_it(
    renewal: KeyRenewalWorld,
    kion: KionStandIn,
    monkeypatch: pytest.MonkeyPatch,
    rotate_secret_runs_the_renewal: MotoRotateSecretHook,
) -> None:
    kion.app_config["app_api_key_lifespan"] = 14
    installation = InstallationSecret.parse(
        json.dumps(renewal.smtp.version_fields(VersionStage="AWSCURRENT"))
    )
    created = kion.clock()
    config = RotationConfig.from_environment()

    def life_at(days: float) -> KeyLife:
        later = created + days * 86_400
        monkeypatch.setattr(kion, "clock", lambda: later)
        moment = datetime.fromtimestamp(later, UTC)
        return stored_key_life(installation, config, now=moment, renew_after=timedelta(30))

    assert not life_at(6.9).due
    life = life_at(7.1)
    assert life.due
    assert life.days_left == pytest.approx(6.9, abs=0.01)

    old = renewal.current()
    renewal.secretsmanager.rotate_secret(  # attached without rotating: a configuration check
        SecretId=renewal.secret_id, RotationLambdaARN=RENEWAL_FUNCTION, RotateImmediately=False
    )
    version_id = ApiKeySecret(renewal.secret_id).start_renewal()
    assert rotate_secret_runs_the_renewal.wait_idle(timeout=30)
    assert rotate_secret_runs_the_renewal.failures == []
    assert "AWSCURRENT" in renewal.stages()[version_id]
    assert renewal.current_works()
    assert renewal.record(old["api_key_id"]) is None
    assert not life_at(7.2).due  # the new key's life starts now


def installation_of(renewal: KeyRenewalWorld) -> InstallationSecret:
    return InstallationSecret.parse(
        json.dumps(renewal.smtp.version_fields(VersionStage="AWSCURRENT"))
    )


def test_the_stored_key_is_read_with_the_secrets_manager_client_the_watch_gives(
    renewal: KeyRenewalWorld,
) -> None:
    secretsmanager = boto3.client("secretsmanager")
    read: list[str] = []
    secretsmanager.meta.events.register(
        "before-parameter-build.secretsmanager.GetSecretValue",
        lambda params, **_: read.append(params["SecretId"]),
    )
    life = stored_key_life(
        installation_of(renewal),
        RotationConfig(),
        now=datetime.now(UTC),
        renew_after=timedelta(30),
        secretsmanager=secretsmanager,
    )
    assert life.api_key_id == renewal.current()["api_key_id"]
    assert read == [renewal.secret_id]


def test_the_stored_keys_life_is_asked_with_the_configured_retries_and_backoff(
    renewal: KeyRenewalWorld, kion: KionStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(
        urllib3.util.retry, "time", SimpleNamespace(sleep=pauses.append, time=time.time)
    )
    kion.fail_requests(503, count=None, methods=["GET"])
    config = RotationConfig(kion_retries=2, kion_retry_backoff=0.25)
    with pytest.raises(KionRequestError):
        stored_key_life(
            installation_of(renewal), config, now=datetime.now(UTC), renew_after=timedelta(30)
        )
    assert [request.status for request in kion.requests_to("GET")] == [503, 503, 503]
    assert pauses == [0.5]


def test_the_stored_keys_life_is_asked_within_the_configured_timeout(
    renewal: KeyRenewalWorld, kion: KionStandIn
) -> None:
    kion.delay = 1.0
    config = RotationConfig(kion_timeout=0.2, kion_retries=0)
    with pytest.raises(KionConnectionError) as raised:
        stored_key_life(
            installation_of(renewal), config, now=datetime.now(UTC), renew_after=timedelta(30)
        )
    assert "0.2 s to answer (KION_TIMEOUT_SECONDS)" in raised.value.cause


def test_an_expired_key_found_by_the_watch_names_kion_and_its_secret(
    renewal: KeyRenewalWorld, kion: KionStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = kion.clock() + 31 * 86_400  # past the default lifespan of 30 days
    monkeypatch.setattr(kion, "clock", lambda: later)
    with pytest.raises(KionApiKeyExpiredError) as raised:
        stored_key_life(
            installation_of(renewal),
            RotationConfig(),
            now=datetime.fromtimestamp(later, UTC),
            renew_after=timedelta(30),
        )
    assert raised.value.cause.startswith(
        f"Kion at {kion.url} refuses the App API key stored in {renewal.secret_id} (401)"
    )


def test_a_one_day_lifespan_is_kions_and_without_one_the_renewal_period_counts(
    renewal: KeyRenewalWorld, kion: KionStandIn
) -> None:
    created = datetime.fromtimestamp(kion.clock(), UTC)
    kion.app_config["app_api_key_lifespan"] = 1

    def life() -> KeyLife:
        return stored_key_life(
            installation_of(renewal), RotationConfig(), now=created, renew_after=timedelta(10)
        )

    assert life().lifespan == timedelta(days=1)
    del kion.app_config["app_api_key_lifespan"]  # Kion sets none
    assert life().lifespan is None
    without_lifespan = life()
    made = without_lifespan.created_at
    assert made is not None  # Kion's own record of the key's creation
    assert made <= created
    assert without_lifespan.renew_at == made + timedelta(days=10)
