"""The Kion stand-in speaks Kion's envelopes, checks bearer keys and fails on command."""

from __future__ import annotations

import json
from typing import Any

import pytest
import urllib3
from urllib3.exceptions import ProtocolError, ReadTimeoutError, SSLError

from ses_smtp_rotator.local import KionStandIn, LoopbackCertificates

APP_CONFIG = "/api/v3/app-config"
SMTP_FIELDS = {
    "smtp_enabled": bool,
    "smtp_host": str,
    "smtp_port": int,
    "smtp_from": str,
    "smtp_username": str,
    "smtp_password": str,
    "smtp_skip_verify": bool,
}


def call(
    http: urllib3.PoolManager,
    kion: KionStandIn,
    method: str,
    path: str = APP_CONFIG,
    body: Any = None,
    api_key: str | None = "",
) -> tuple[int, Any]:
    """One request; ``api_key=""`` means the stand-in's valid key, None means no header."""
    headers = {"Accept": "application/json"}
    key = kion.api_key if api_key == "" else api_key
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    data = None if body is None else json.dumps(body)
    if data is not None:
        headers["Content-Type"] = "application/json"
    response = http.request(method, kion.url + path, body=data, headers=headers)
    try:
        return response.status, json.loads(response.data)
    except ValueError:
        return response.status, response.data.decode()


def test_get_app_config_answers_kions_envelope_with_the_smtp_settings(
    http: urllib3.PoolManager, kion: KionStandIn
) -> None:
    kion.app_config["smtp_password"] = "current-password"
    status, reply = call(http, kion, "GET")
    assert status == 200
    assert reply["status"] == 200
    for name, kind in SMTP_FIELDS.items():
        assert type(reply["data"][name]) is kind, name
    assert reply["data"]["smtp_password"] == "current-password"
    assert {"app_api_key_lifespan", "app_api_key_limit", "allow_password_login"} <= set(
        reply["data"]
    )


def test_mask_password_hides_the_smtp_password_on_get(
    http: urllib3.PoolManager, certificates: LoopbackCertificates
) -> None:
    with KionStandIn(
        {"smtp_password": "hidden"}, mask_password=True, certificates=certificates
    ) as k:
        status, reply = call(http, k, "GET")
        assert status == 200
        assert reply["data"]["smtp_password"] == ""
        assert k.app_config["smtp_password"] == "hidden"


def test_patch_changes_only_the_given_fields(http: urllib3.PoolManager, kion: KionStandIn) -> None:
    before = dict(kion.app_config)
    body = {"smtp_username": "AKIAEXAMPLENEWKEY001", "smtp_password": "new-password"}
    status, reply = call(http, kion, "PATCH", body=body)
    assert status == 201
    assert reply == {"status": 200, "message": "Application settings updated"}
    assert kion.app_config == {**before, **body}
    _, after = call(http, kion, "GET")
    assert after["data"]["smtp_username"] == "AKIAEXAMPLENEWKEY001"
    [patch] = kion.requests_to("PATCH")
    assert (patch.status, patch.fields) == (201, ("smtp_username", "smtp_password"))


@pytest.mark.parametrize(
    "body",
    [
        {"smtp_nickname": "x"},
        {"smtp_port": "587"},
        {"smtp_enabled": 1},
        {"smtp_port": True},
        ["smtp_username", "x"],
    ],
)
def test_patch_refuses_unknown_fields_and_wrong_types_without_changing_anything(
    http: urllib3.PoolManager, kion: KionStandIn, body: Any
) -> None:
    before = dict(kion.app_config)
    status, reply = call(http, kion, "PATCH", body=body)
    assert status == 400
    assert reply["status"] == 400
    assert reply["message"]
    assert kion.app_config == before


def test_patch_with_a_body_that_is_not_json_gets_400(
    http: urllib3.PoolManager, kion: KionStandIn
) -> None:
    response = http.request(
        "PATCH",
        kion.url + APP_CONFIG,
        body=b"smtp_username=x",
        headers={"Authorization": f"Bearer {kion.api_key}", "Content-Type": "application/json"},
    )
    assert response.status == 400
    assert json.loads(response.data)["status"] == 400


@pytest.mark.parametrize("api_key", [None, "not-a-key"])
def test_requests_without_a_valid_bearer_key_get_401(
    http: urllib3.PoolManager, kion: KionStandIn, api_key: str | None
) -> None:
    before = dict(kion.app_config)
    for method, body in (("GET", None), ("PATCH", {"smtp_username": "AKIAEXAMPLE"})):
        status, reply = call(http, kion, method, body=body, api_key=api_key)
        assert status == 401
        assert reply["status"] == 401
        assert reply["message"]
    assert kion.app_config == before


def test_a_basic_auth_header_with_the_right_key_is_not_a_bearer_token(
    http: urllib3.PoolManager, kion: KionStandIn
) -> None:
    response = http.request(
        "GET", kion.url + APP_CONFIG, headers={"Authorization": f"Basic {kion.api_key}"}
    )
    assert response.status == 401


def test_an_unknown_route_gets_404_in_kions_error_shape(
    http: urllib3.PoolManager, kion: KionStandIn
) -> None:
    status, reply = call(http, kion, "GET", "/api/v1/app-config")
    assert status == 404
    assert reply["status"] == 404
    assert "message" in reply


@pytest.mark.parametrize("fault", [400, 401, 403, 404, 422, 429, 500, 502, 503])
def test_fail_requests_fails_the_next_n_requests_then_recovers(
    http: urllib3.PoolManager, kion: KionStandIn, fault: int
) -> None:
    kion.fail_requests(fault, count=2)
    for _ in range(2):
        status, reply = call(http, kion, "GET")
        assert status == fault
        assert reply["status"] == fault
        assert reply["message"]
    assert call(http, kion, "GET")[0] == 200
    assert [r.status for r in kion.request_log] == [fault, fault, 200]


def test_fail_requests_without_a_count_fails_until_cleared(
    http: urllib3.PoolManager, kion: KionStandIn
) -> None:
    kion.fail_requests(503, count=None, retry_after=1)
    for _ in range(3):
        response = http.request("GET", kion.url + APP_CONFIG)
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
    kion.clear_faults()
    assert call(http, kion, "GET")[0] == 200


def test_a_fault_limited_to_patch_leaves_get_working_and_settings_unchanged(
    http: urllib3.PoolManager, kion: KionStandIn
) -> None:
    before = dict(kion.app_config)
    kion.fail_requests(500, count=None, methods=["PATCH"], message="database unavailable")
    assert call(http, kion, "GET")[0] == 200
    status, reply = call(http, kion, "PATCH", body={"smtp_username": "AKIAEXAMPLE"})
    assert (status, reply) == (500, {"status": 500, "message": "database unavailable"})
    assert kion.app_config == before


def test_html_mode_answers_a_page_that_is_not_json(
    http: urllib3.PoolManager, kion: KionStandIn
) -> None:
    kion.html_replies = True
    kion.html_status = 502
    response = http.request("GET", kion.url + APP_CONFIG)
    assert response.status == 502
    assert response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError, match="Expecting value"):
        json.loads(response.data)
    kion.html_replies = False
    assert call(http, kion, "GET")[0] == 200


def test_a_delay_makes_a_client_with_a_short_read_timeout_give_up(
    https_pool: Any, kion: KionStandIn
) -> None:
    kion.delay = 5.0
    impatient = https_pool(kion.ca_pem, timeout=urllib3.Timeout(connect=2.0, read=0.3))
    with pytest.raises(ReadTimeoutError):
        impatient.request("GET", kion.url + APP_CONFIG)

    # Clearing the faults ends the wait: the request is decided (dropped, its client gone) now,
    # not seconds later in whatever runs next.
    kion.clear_faults()
    assert [request.status for request in kion.requests_to("GET")] == [None]


def test_a_patch_whose_reply_is_lost_as_a_500_still_applies(
    http: urllib3.PoolManager, kion: KionStandIn
) -> None:
    kion.patch_applies_then_fails("error", count=1)
    status, reply = call(http, kion, "PATCH", body={"smtp_username": "AKIAFIRST"})
    assert (status, reply["status"]) == (500, 500)
    assert kion.app_config["smtp_username"] == "AKIAFIRST"
    assert call(http, kion, "PATCH", body={"smtp_username": "AKIASECOND"})[0] == 201
    assert kion.app_config["smtp_username"] == "AKIASECOND"


def test_a_patch_whose_connection_is_dropped_still_applies(
    http: urllib3.PoolManager, kion: KionStandIn
) -> None:
    kion.patch_applies_then_fails("drop", count=None)
    with pytest.raises(ProtocolError):
        call(http, kion, "PATCH", body={"smtp_username": "AKIADROPPED"})
    assert kion.app_config["smtp_username"] == "AKIADROPPED"
    assert kion.requests_to("PATCH")[-1].status is None
    assert call(http, kion, "GET")[0] == 200


def test_the_request_log_holds_no_secret(http: urllib3.PoolManager, kion: KionStandIn) -> None:
    password = "BNewSmtpPasswordDerivedFromTheSecretKey0000"
    call(http, kion, "PATCH", body={"smtp_username": "AKIAEXAMPLE", "smtp_password": password})
    call(http, kion, "GET", f"/api/v3/app-config?token={kion.api_key}")
    call(http, kion, "GET", api_key="wrong-key-value")
    logged = repr(kion.request_log)
    assert len(kion.request_log) == 3
    assert password not in logged
    assert kion.api_key not in logged
    assert "wrong-key-value" not in logged
    assert "AKIAEXAMPLE" not in logged


def test_app_api_keys_can_be_created_used_rotated_and_deleted(
    http: urllib3.PoolManager, kion: KionStandIn
) -> None:
    status, reply = call(http, kion, "POST", "/api/v3/app-api-key", {"name": "smtp-rotation"})
    assert status == 201
    assert reply["status"] == 201
    new_id, new_key = reply["data"]["id"], reply["data"]["key"]
    assert call(http, kion, "GET", api_key=new_key)[0] == 200

    status, reply = call(http, kion, "POST", "/api/v3/app-api-key/rotate", {"key": new_key})
    assert status == 201
    rotated_id, rotated = reply["data"]["id"], reply["data"]["key"]
    assert call(http, kion, "GET", api_key=new_key)[0] == 401
    assert call(http, kion, "GET", api_key=rotated)[0] == 200

    status, _ = call(http, kion, "DELETE", f"/api/v3/app-api-key/{rotated_id}")
    assert status == 200
    assert call(http, kion, "GET", api_key=rotated)[0] == 401
    assert call(http, kion, "DELETE", f"/api/v3/app-api-key/{new_id}")[0] == 404


def test_creating_keys_past_the_limit_gets_422(
    http: urllib3.PoolManager, certificates: LoopbackCertificates
) -> None:
    with KionStandIn({"app_api_key_limit": 1}, certificates=certificates) as kion:
        status, reply = call(http, kion, "POST", "/api/v3/app-api-key", {"name": "extra"})
        assert (status, reply["status"]) == (422, 422)
        assert len(kion.api_keys) == 1


def test_a_client_that_does_not_trust_the_ca_fails_tls(https_pool: Any, kion: KionStandIn) -> None:
    stranger = https_pool(LoopbackCertificates().ca_pem)
    with pytest.raises(SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        stranger.request("GET", kion.url + APP_CONFIG)
    assert kion.request_log == []


def test_a_server_with_untrusted_certificates_is_rejected(
    http: urllib3.PoolManager, certificates: LoopbackCertificates
) -> None:
    with (
        KionStandIn(certificates=certificates.untrusted()) as kion,
        pytest.raises(SSLError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        http.request("GET", kion.url + APP_CONFIG)


@pytest.mark.parametrize(
    ("method", "headers", "body", "status"),
    [
        ("PATCH", {}, b'{"smtp_port": 587}', 415),
        ("PATCH", {"Content-Type": "text/plain"}, b'{"smtp_port": 587}', 415),
        ("GET", {"Content-Type": "application/json"}, b"null", 400),
    ],
)
def test_a_request_whose_body_does_not_fit_its_method_is_refused(
    http: urllib3.PoolManager,
    kion: KionStandIn,
    method: str,
    headers: dict[str, str],
    body: bytes,
    status: int,
) -> None:
    before = dict(kion.app_config)
    reply = http.request(
        method,
        kion.url + APP_CONFIG,
        body=body,
        headers={"Authorization": f"Bearer {kion.api_key}", **headers},
    )
    assert reply.status == status
    assert kion.app_config == before
