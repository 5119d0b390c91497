"""The Kion client the steps use: a renewed API key read again, retries and their pauses, and
replies that are not what Kion's v3 API answers, each named in its own words."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
import urllib3.util.retry

from ses_smtp_rotator.functions.errors import KionAuthError, KionConnectionError, KionRequestError
from ses_smtp_rotator.functions.services.kion_keys import APP_API_KEYS_PATH, KionKeyClient
from ses_smtp_rotator.functions.services.kion_settings import (
    APP_CONFIG_PATH,
    RETRY_AFTER_CAP,
    KionClient,
    KionSmtpSettings,
)
from ses_smtp_rotator.local.kion_server import KionStandIn
from ses_smtp_rotator.local.rotation_service import RotationStepError

KEY_SECRET = "kion/api-key"


def client_of(kion: KionStandIn, api_key: str | None = None, **options: Any) -> KionKeyClient:
    return KionKeyClient(
        kion.url,
        kion.api_key if api_key is None else api_key,
        api_key_secret_id=KEY_SECRET,
        ca_pem=kion.ca_pem,
        **{"retries": 0, **options},
    )


def failed_step(world, step: str, token: str) -> BaseException:
    with pytest.raises(RotationStepError) as raised:
        world.step(step, token)
    return raised.value.error


@pytest.fixture
def retry_pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses urllib3 takes between Kion retries, recorded instead of slept; a client that
    keeps retrying fails after 20."""
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) > 20:
            raise RuntimeError("Kion requests retried without end")

    monkeypatch.setattr(urllib3.util.retry, "time", SimpleNamespace(sleep=pause, time=time.time))
    return pauses


@pytest.mark.usefixtures("warm_cache")
def test_a_renewed_kion_api_key_is_read_again_after_one_refusal(world) -> None:
    token = world.start()
    world.run_steps(token, ("createSecret", "setSecret"))  # the key in the secret is cached now
    world.kion.api_keys.clear()  # a renewal: the cached key is deleted in Kion ...
    _, renewed = world.kion.create_api_key()
    world.put_kion_api_key(renewed)  # ... and its successor stored
    world.kion.request_log.clear()

    world.run_steps(token, ("testSecret", "finishSecret"))

    assert world.converged()
    statuses = [request.status for request in world.kion.request_log]
    assert statuses.count(401) == 1
    assert statuses[statuses.index(401) + 1] == 200


@pytest.mark.usefixtures("warm_cache")
def test_a_key_renewed_during_set_secret_is_read_again_for_the_change(
    world, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Renewed while setSecret waits for SES: the PATCH with the cached key is refused, and the
    same change goes again with the key read again."""
    token = world.start()
    world.step("createSecret", token)
    renewed: list[str] = []

    def renew_once() -> None:
        if not renewed:
            world.kion.api_keys.clear()
            renewed.append(world.kion.create_api_key()[1])
            world.put_kion_api_key(renewed[0])

    world.wait_on_virtual_time(token, monkeypatch, at_each_pause=renew_once)

    world.step("setSecret", token)

    assert renewed
    assert [request.status for request in world.kion.requests_to("PATCH")] == [401, 201]
    assert world.kion_credential()[0] == world.version_fields(VersionId=token)["username"]
    assert world.kion_authenticates()


def test_a_stored_key_that_kion_refuses_too_fails_after_one_request(world) -> None:
    token = world.start()
    world.step("createSecret", token)
    world.kion.api_keys.clear()
    world.kion.create_api_key()  # Kion knows another key only
    world.kion.request_log.clear()

    error = failed_step(world, "setSecret", token)

    assert isinstance(error, KionAuthError)
    assert [request.status for request in world.kion.request_log] == [401]


def test_a_client_with_no_way_to_read_the_key_again_reports_the_refusal(
    kion: KionStandIn,
) -> None:
    client = KionClient(
        kion.url, "not-a-key-of-this-kion", api_key_secret_id=KEY_SECRET, ca_pem=kion.ca_pem
    )
    with pytest.raises(KionAuthError) as raised:
        client.smtp_settings()
    assert raised.value.cause == (
        f"Kion at {kion.url} rejected the App API key (401). Kion said: invalid, expired or "
        "missing App API key"
    )
    assert [request.status for request in kion.request_log] == [401]


def test_kion_failures_are_retried_with_growing_pauses(
    world, monkeypatch: pytest.MonkeyPatch, retry_pauses: list[float]
) -> None:
    monkeypatch.setenv("KION_RETRIES", "3")
    monkeypatch.setenv("KION_RETRY_BACKOFF_SECONDS", "0.25")
    token = world.start()
    world.step("createSecret", token)
    world.kion.fail_requests(503, count=3, methods=["GET"])

    world.step("setSecret", token)

    gets = [request.status for request in world.kion.requests_to("GET")]
    assert gets[:4] == [503, 503, 503, 200]
    assert retry_pauses == [0.5, 1.0]  # none before the first retry, then 2x and 4x the factor
    assert world.kion_authenticates()


def test_kion_requests_stop_after_kion_retries_more_attempts(
    world, monkeypatch: pytest.MonkeyPatch, retry_pauses: list[float]
) -> None:
    monkeypatch.setenv("KION_RETRIES", "1")
    before = world.kion_credential()
    token = world.start()
    world.step("createSecret", token)
    world.kion.fail_requests(503, count=None, methods=["GET"])

    error = failed_step(world, "setSecret", token)

    assert isinstance(error, KionRequestError)
    assert error.cause == (
        f"Kion at {world.current()['kion_url']} answered GET {APP_CONFIG_PATH} with HTTP 503. "
        "Kion said: Service Unavailable"
    )
    assert [request.status for request in world.kion.requests_to("GET")] == [503, 503]
    world.kion.clear_faults()
    assert world.kion_credential() == before


def test_a_post_whose_reply_timed_out_is_not_sent_again(kion: KionStandIn) -> None:
    """Kion may have made the key: a second POST would make another."""
    client = client_of(kion, timeout=0.3, retries=1)
    kion.delay = 1.0
    with pytest.raises(KionConnectionError) as raised:
        client.create_key("smtp-rotator renewal")
    kion.clear_faults()
    assert raised.value.cause == (
        f"POST {APP_API_KEYS_PATH} to Kion at {kion.url} timed out (ReadTimeoutError) in 1 "
        "attempt, each allowed 0.3 s to connect and 0.3 s to answer (KION_TIMEOUT_SECONDS)."
    )
    assert len(kion.requests_to("POST", APP_API_KEYS_PATH)) == 1


@pytest.mark.parametrize(
    ("status", "reply", "cause"),
    [
        (300, {"status": 300, "message": "pick one"}, "with HTTP 300. Kion said: pick one"),
        (
            502,
            {"error": "upstream connect error"},
            "with HTTP 502. Kion said: upstream connect error",
        ),
        (502, {"status": 502}, "with HTTP 502."),
        (200, {"status": 200}, "without a 'data' object."),
    ],
    ids=["a 300", "a gateway's error field", "no message", "no data"],
)
def test_a_reply_that_is_not_kions_is_named(
    kion: KionStandIn, status: int, reply: dict[str, Any], cause: str
) -> None:
    kion.foreign_reply = (status, reply)
    with pytest.raises(KionRequestError) as raised:
        client_of(kion).smtp_settings()
    assert raised.value.cause == f"Kion at {kion.url} answered GET {APP_CONFIG_PATH} {cause}"
    assert raised.value.fix == (
        "Check that kion_url points at Kion itself (version 3.x with the v3 API)."
        if status == 200
        else "Retry later for 5xx or 429 answers; for other codes fix what Kion's message names."
    )


@pytest.mark.parametrize(
    ("setting", "value", "read"),
    [
        ("smtp_port", 2587, 2587),
        ("smtp_port", True, None),
        ("smtp_port", "587", None),
        ("smtp_enabled", False, False),
        ("smtp_enabled", "true", None),
    ],
)
def test_smtp_settings_of_another_type_are_read_as_unknown(
    setting: str, value: object, read: object
) -> None:
    settings = KionSmtpSettings.from_app_config(
        {"smtp_username": "AKIAEXAMPLE", setting: value}, "https://kion.example.com"
    )
    assert getattr(settings, setting.removeprefix("smtp_")) == read


def test_kions_message_is_quoted_up_to_300_characters(kion: KionStandIn) -> None:
    kion.foreign_reply = (502, {"status": 502, "message": "x" * 400})
    with pytest.raises(KionRequestError) as raised:
        client_of(kion).smtp_settings()
    assert raised.value.cause.endswith(f"with HTTP 502. Kion said: {'x' * 300}")


def test_a_long_retry_after_is_waited_for_only_up_to_the_cap(
    kion: KionStandIn, retry_pauses: list[float]
) -> None:
    """An hour's Retry-After would hold the step until the function times out."""
    kion.fail_requests(503, count=2, methods=["GET"], retry_after=3600)

    client_of(kion, retries=2).app_config()

    assert retry_pauses == [RETRY_AFTER_CAP, RETRY_AFTER_CAP]
    assert [r.status for r in kion.requests_to("GET")] == [503, 503, 200]
