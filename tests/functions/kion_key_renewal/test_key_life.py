"""When the Kion API key is due: with less than half its life left, or after the configured period
where Kion sets no lifespan; an expired or deleted key is an error that names the fix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ses_smtp_rotator.functions.kion_key_renewal.key_life import (
    KionApiKeyExpiredError,
    key_life,
    renew_after_from_environment,
)
from ses_smtp_rotator.functions.services.kion_keys import KionKeyClient
from ses_smtp_rotator.local.kion_server import KionStandIn

DAY = 86_400.0
RENEW_AFTER = timedelta(days=30)


@pytest.fixture
def clock(kion: KionStandIn, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The stand-in's clock, moved by hand (``clock[0] += ...``)."""
    now = [1_800_000_000.0]
    monkeypatch.setattr(kion, "clock", lambda: now[0])
    return now


def life_of(kion: KionStandIn, key_id: int | None, api_key: str, now: float):
    client = KionKeyClient(
        kion.url, api_key, api_key_secret_id="kion/api-key", ca_pem=kion.ca_pem, retries=0
    )
    moment = datetime.fromtimestamp(now, UTC)
    return key_life(client, key_id, now=moment, renew_after=RENEW_AFTER, secret_id="kion/api-key")


def test_a_key_is_due_once_less_than_half_its_life_is_left(
    kion: KionStandIn, clock: list[float]
) -> None:
    kion.app_config["app_api_key_lifespan"] = 14
    record = kion.api_keys.issue("renewed")
    clock[0] += 7 * DAY - 60
    life = life_of(kion, record.id, record.key, clock[0])
    assert not life.due
    assert life.days_left == pytest.approx(7 + 60 / DAY)
    clock[0] += 60
    life = life_of(kion, record.id, record.key, clock[0])
    assert life.due
    assert life.expires_at == datetime.fromtimestamp(record.created_at + 14 * DAY, UTC)


def test_without_a_lifespan_a_key_is_due_after_the_configured_period(
    kion: KionStandIn, clock: list[float]
) -> None:
    kion.app_config["app_api_key_lifespan"] = 0
    record = kion.api_keys.issue("renewed")
    clock[0] += 29 * DAY
    life = life_of(kion, record.id, record.key, clock[0])
    assert (life.due, life.days_left, life.lifespan) == (False, None, None)
    clock[0] += DAY
    assert life_of(kion, record.id, record.key, clock[0]).due


def test_a_key_of_unknown_id_is_due_at_once(kion: KionStandIn, clock: list[float]) -> None:
    record = kion.api_keys.issue("pasted by hand")
    life = life_of(kion, None, record.key, clock[0])
    assert life.due
    assert life.renew_at is None
    assert life_of(kion, 9999, record.key, clock[0]).api_key_id is None  # id not in Kion


@pytest.mark.parametrize("how", ["expired", "deleted"])
def test_a_key_kion_refuses_raises_the_alert_with_the_fix(
    kion: KionStandIn, clock: list[float], how: str
) -> None:
    record = kion.api_keys.issue("renewed")
    if how == "expired":
        clock[0] += 31 * DAY
    else:
        kion.revoke_api_key(record.id)
    with pytest.raises(KionApiKeyExpiredError) as error:
        life_of(kion, record.id, record.key, clock[0])
    assert "expired or was deleted" in error.value.cause
    assert "ses-smtp-rotator set-kion-key" in error.value.fix
    assert record.key not in str(error.value)


def test_the_period_comes_from_the_environment() -> None:
    assert renew_after_from_environment({}) == timedelta(days=30)
    assert renew_after_from_environment({"KION_API_KEY_RENEW_AFTER_DAYS": "7"}) == timedelta(7)
    assert renew_after_from_environment({"KION_API_KEY_RENEW_AFTER_DAYS": "1"}) == timedelta(1)
    assert renew_after_from_environment({"KION_API_KEY_RENEW_AFTER_DAYS": " 0.5 "}) == timedelta(
        hours=12
    )
    for refused in ("0", "-2"):
        with pytest.raises(ValueError, match=f"days, not '{refused}'"):
            renew_after_from_environment({"KION_API_KEY_RENEW_AFTER_DAYS": refused})
    with pytest.raises(ValueError, match="Fix: set it"):
        renew_after_from_environment({"KION_API_KEY_RENEW_AFTER_DAYS": "soon"})
