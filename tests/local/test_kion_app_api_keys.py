"""The Kion stand-in's App API key routes, held to Kion's OpenAPI description (v3.14): keys expire
by lifespan on the stand-in's clock, the per-user limit holds, and any live key it issued is a
valid bearer token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from kion_openapi import OpenApiCheck

from ses_smtp_rotator.local import KionStandIn, LoopbackCertificates

KEYS = "/api/v3/app-api-key"
DAY = 86_400.0


class Clock:
    """The stand-in's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def openapi() -> OpenApiCheck:
    return OpenApiCheck()


@pytest.fixture
def kion(
    certificates: LoopbackCertificates, clock: Clock, openapi: OpenApiCheck
) -> Iterator[KionStandIn]:
    """A stand-in on a hand-moved clock, keys living 7 days, at most 3 per user, every exchange
    checked against the OpenAPI description."""
    settings = {"app_api_key_lifespan": 7, "app_api_key_limit": 3}
    with KionStandIn(settings, certificates=certificates, clock=clock) as server:
        openapi.secrets = lambda: server.api_keys.values()
        server.observers.append(openapi)
        yield server
        assert openapi.checked > 0
        assert not openapi.violations, openapi.violations
        assert not openapi.undocumented, openapi.undocumented


def call(
    http: urllib3.PoolManager,
    kion: KionStandIn,
    method: str,
    path: str,
    body: Any = None,
    api_key: str | None = None,
) -> tuple[int, Any]:
    headers = {"Accept": "application/json", "Authorization": f"Bearer {api_key or kion.api_key}"}
    data = None if body is None else json.dumps(body)
    if data is not None:
        headers["Content-Type"] = "application/json"
    response = http.request(method, kion.url + path, body=data, headers=headers)
    return response.status, json.loads(response.data)


def test_a_new_key_is_listed_found_by_id_and_authenticates(
    http: urllib3.PoolManager, kion: KionStandIn, clock: Clock
) -> None:
    status, reply = call(http, kion, "POST", KEYS, {"name": "ses-smtp-rotator/test/0001"})
    assert (status, reply["status"]) == (201, 201)
    key_id, key = reply["data"]["id"], reply["data"]["key"]
    assert call(http, kion, "GET", "/api/v3/app-config", api_key=key)[0] == 200

    status, reply = call(http, kion, "GET", KEYS)
    assert status == 200
    listed = {entry["id"]: entry for entry in reply["data"]}
    assert listed[key_id]["name"] == "ses-smtp-rotator/test/0001"
    assert listed[key_id]["user_id"] == 1
    assert key not in json.dumps(reply)  # metadata only

    status, reply = call(http, kion, "GET", f"{KEYS}/{key_id}")
    assert status == 200
    assert reply["data"]["created_at"] == "2027-01-15T08:00:00+0000"
    assert reply["data"]["id"] == key_id


def test_without_a_lifespan_keys_never_expire(
    http: urllib3.PoolManager, kion: KionStandIn, clock: Clock
) -> None:
    kion.app_config["app_api_key_lifespan"] = 0
    clock.now += 3650 * DAY
    assert call(http, kion, "GET", "/api/v3/app-config")[0] == 200


def test_a_key_expires_after_the_lifespan_on_the_stand_ins_clock(
    http: urllib3.PoolManager, kion: KionStandIn, clock: Clock
) -> None:
    _, reply = call(http, kion, "POST", KEYS, {"name": "short-lived"})
    key_id, key = reply["data"]["id"], reply["data"]["key"]
    clock.now += 7 * DAY - 1
    assert call(http, kion, "GET", "/api/v3/app-config", api_key=key)[0] == 200
    clock.now += 1
    status, reply = call(http, kion, "GET", "/api/v3/app-config", api_key=key)
    assert (status, reply["status"]) == (401, 401)
    assert "expired" in reply["message"]
    fresh = kion.create_api_key()[1]
    _, listed = call(http, kion, "GET", KEYS, api_key=fresh)
    assert key_id in {entry["id"] for entry in listed["data"]}  # expired, still listed
    _, live = call(http, kion, "GET", f"{KEYS}/user/1", api_key=fresh)
    assert key_id not in {entry["id"] for entry in live["data"]}


def test_the_per_user_limit_counts_expired_keys_until_they_are_deleted(
    http: urllib3.PoolManager, kion: KionStandIn, clock: Clock
) -> None:
    ids = [call(http, kion, "POST", KEYS, {"name": f"k{n}"})[1]["data"]["id"] for n in (1, 2)]
    status, reply = call(http, kion, "POST", KEYS, {"name": "one too many"})
    assert (status, reply["status"]) == (422, 422)
    other_user = kion.api_keys.issue("someone else", user_id=2)
    assert call(http, kion, "POST", KEYS, {"name": "theirs"}, api_key=other_user.key)[0] == 201
    assert call(http, kion, "DELETE", f"{KEYS}/{ids[0]}")[0] == 200
    assert call(http, kion, "POST", KEYS, {"name": "fits again"})[0] == 201


def test_deleting_a_key_ends_it_and_a_second_delete_is_404(
    http: urllib3.PoolManager, kion: KionStandIn
) -> None:
    _, reply = call(http, kion, "POST", KEYS, {"name": "to delete"})
    key_id, key = reply["data"]["id"], reply["data"]["key"]
    status, reply = call(http, kion, "DELETE", f"{KEYS}/{key_id}")
    assert (status, reply["status"]) == (200, 200)
    assert call(http, kion, "GET", "/api/v3/app-config", api_key=key)[0] == 401
    assert call(http, kion, "DELETE", f"{KEYS}/{key_id}")[0] == 404
    assert call(http, kion, "GET", f"{KEYS}/{key_id}")[0] == 404


def test_a_user_that_does_not_exist_is_404_and_a_key_without_a_name_is_400(
    http: urllib3.PoolManager, kion: KionStandIn
) -> None:
    assert call(http, kion, "GET", f"{KEYS}/user/99")[0] == 404
    status, reply = call(http, kion, "POST", KEYS, {"name": ""})
    assert (status, reply["status"]) == (400, 400)


def test_key_creation_switched_off_is_403(http: urllib3.PoolManager, kion: KionStandIn) -> None:
    kion.app_config["app_api_key_creation_enabled"] = False
    status, reply = call(http, kion, "POST", KEYS, {"name": "refused"})
    assert (status, reply["status"]) == (403, 403)
    assert len(kion.api_keys) == 1


def test_app_config_get_and_patch_replies_follow_the_description(
    http: urllib3.PoolManager, kion: KionStandIn
) -> None:
    assert call(http, kion, "GET", "/api/v3/app-config")[0] == 200
    body = {"smtp_username": "AKIAEXAMPLE", "smtp_password": "new-password"}
    assert call(http, kion, "PATCH", "/api/v3/app-config", body)[0] == 201


def test_the_check_catches_a_reply_that_breaks_the_description(
    http: urllib3.PoolManager, kion: KionStandIn, openapi: OpenApiCheck
) -> None:
    """The check can fail: a smtp_port served as text is caught."""
    kion.app_config["smtp_port"] = "587"
    call(http, kion, "GET", "/api/v3/app-config")
    kion.app_config["smtp_port"] = 587
    [violation] = openapi.violations
    assert "'587' is not of type 'integer'" in violation
    openapi.violations.clear()
