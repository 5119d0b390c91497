"""The Kion key client (``services/kion_keys.py``): Kion's key routes as the renewal reads them,
replies that are not Kion's named in their own words, and Kion's times as they really come."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from ses_smtp_rotator.functions.errors import KionRequestError
from ses_smtp_rotator.functions.services.kion_keys import (
    APP_API_KEYS_PATH,
    AppApiKeyInfo,
    KionKeyClient,
    parse_kion_time,
)
from ses_smtp_rotator.local.kion_server import KionStandIn

WRONG_API = "Check that kion_url points at Kion 3.x with the v3 API."


def client_of(kion: KionStandIn) -> KionKeyClient:
    return KionKeyClient(
        kion.url, kion.api_key, api_key_secret_id="kion/api-key", ca_pem=kion.ca_pem, retries=0
    )


def test_the_keys_kion_lists_are_read_with_their_metadata(kion: KionStandIn) -> None:
    key_id, _ = kion.create_api_key()

    listed = {key.id: key for key in client_of(kion).list_keys()}

    assert listed[key_id].user_id == 1
    assert listed[key_id].created_at is not None
    assert listed[key_id].last_used is None  # Kion shows "never" as year 1
    assert client_of(kion).find_key(key_id) == listed[key_id]


def test_a_list_reply_without_a_list_is_named(kion: KionStandIn) -> None:
    kion.foreign_reply = (200, {"status": 200, "data": {"id": 1}})
    with pytest.raises(KionRequestError) as raised:
        client_of(kion).list_keys()
    assert raised.value.cause == (
        f"Kion at {kion.url} answered GET {APP_API_KEYS_PATH} without a list."
    )
    assert raised.value.fix == WRONG_API


def test_entries_of_a_list_that_are_not_keys_are_left_out(kion: KionStandIn) -> None:
    kion.foreign_reply = (
        200,
        {"status": 200, "data": ["7", None, {"id": 7, "name": None, "user_id": "1"}]},
    )
    assert client_of(kion).list_keys() == [AppApiKeyInfo(7, "", None, None, None)]


def test_a_list_refused_by_kion_names_the_request(kion: KionStandIn) -> None:
    kion.foreign_reply = (502, {"status": 502, "message": "bad gateway"})
    with pytest.raises(KionRequestError) as raised:
        client_of(kion).list_keys()
    assert raised.value.cause == (
        f"Kion at {kion.url} answered GET {APP_API_KEYS_PATH} with HTTP 502. Kion said: bad gateway"
    )


def test_a_key_kion_no_longer_has_is_found_as_none_and_deleted_as_false(
    kion: KionStandIn,
) -> None:
    key_id, _ = kion.create_api_key()
    assert client_of(kion).delete_key(key_id) is True

    assert client_of(kion).find_key(key_id) is None
    assert client_of(kion).delete_key(key_id) is False


def test_a_found_key_without_an_object_is_none(kion: KionStandIn) -> None:
    kion.foreign_reply = (200, {"status": 200, "data": [{"id": 3}]})
    assert client_of(kion).find_key(3) is None


@pytest.mark.parametrize(
    "data",
    [None, [], {"id": 9}, {"key": "new-key"}, {"id": 9, "key": 12345}],
    ids=["no data", "a list", "no key", "no id", "a key that is not text"],
)
def test_a_created_key_without_its_key_and_id_is_named(kion: KionStandIn, data: Any) -> None:
    kion.foreign_reply = (200, {"status": 200, "data": data})
    with pytest.raises(KionRequestError) as raised:
        client_of(kion).create_key("renewal")
    assert raised.value.cause == (
        f"Kion at {kion.url} answered POST {APP_API_KEYS_PATH} without a key and its id."
    )
    assert raised.value.fix == WRONG_API


def test_a_created_key_is_read_with_its_id(kion: KionStandIn) -> None:
    kion.foreign_reply = (200, {"status": 200, "data": {"id": "9", "key": "new-key"}})
    created = client_of(kion).create_key("renewal")
    assert (created.id, created.key) == (9, "new-key")
    assert "new-key" not in repr(created)


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("2019-02-12T22:57:10+0000", datetime(2019, 2, 12, 22, 57, 10, tzinfo=UTC)),
        (
            "2026-12-02T10:00:00-05:00",
            datetime(2026, 12, 2, 10, tzinfo=timezone(timedelta(hours=-5))),
        ),
        ("1971-01-01T00:00:00+0000", datetime(1971, 1, 1, tzinfo=UTC)),
        ("1970-12-31T23:59:59+0000", None),
        ("0001-01-01T00:00:00+0000", None),
        ("2019-02-12T22:57:10", None),
        ("yesterday", None),
        ("", None),
        (1549999999, None),
        (None, None),
    ],
)
def test_kion_times_are_read_when_they_happened_and_carry_a_zone(text: Any, read: Any) -> None:
    assert parse_kion_time(text) == read


def test_a_key_read_refused_by_kion_names_the_request(kion: KionStandIn) -> None:
    kion.foreign_reply = (502, {"status": 502, "message": "bad gateway"})
    with pytest.raises(KionRequestError) as raised:
        client_of(kion).find_key(3)
    assert raised.value.cause == (
        f"Kion at {kion.url} answered GET {APP_API_KEYS_PATH}/3 with HTTP 502. Kion said: "
        "bad gateway"
    )
