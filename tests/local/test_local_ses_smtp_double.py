"""The SES SMTP stand-in accepts exactly the passwords SES would, and fails like SES does."""

from __future__ import annotations

import base64
import smtplib
import ssl
import time
from collections.abc import Iterator
from datetime import UTC
from typing import Any

import boto3
import pytest
from moto.iam.models import iam_backends
from moto.server import ThreadedMotoServer

from ses_smtp_rotator.functions.services.smtp_password import derive_smtp_password
from ses_smtp_rotator.local import (
    LoopbackCertificates,
    SesSmtpServer,
    SilentSmtpServer,
    moto_key_lookup,
)

REGION = "us-east-1"
USER = "kion-smtp"


class FakeClock:
    """An epoch clock that follows real time until a test sets ``now``."""

    def __init__(self) -> None:
        self.now: float | None = None

    def __call__(self) -> float:
        return time.time() if self.now is None else self.now


def smtp_password(key: dict[str, str], region: str = REGION) -> str:
    return derive_smtp_password(key["SecretAccessKey"], region)


def open_session(server: SesSmtpServer, ca_pem: str | None = None) -> smtplib.SMTP:
    """An SMTP session with TLS up (STARTTLS or implicit), trusting ``ca_pem``."""
    context = ssl.create_default_context(cadata=ca_pem or server.ca_pem)
    if server.implicit_tls:
        return smtplib.SMTP_SSL(server.host, server.port, timeout=5, context=context)
    session = smtplib.SMTP(server.host, server.port, timeout=5)
    try:
        session.starttls(context=context)
    except BaseException:
        session.close()
        raise
    return session


def login(server: SesSmtpServer, username: str, password: str) -> tuple[int, bytes]:
    with open_session(server) as session:
        try:
            return session.login(username, password)
        except smtplib.SMTPAuthenticationError as error:
            return error.smtp_code, error.smtp_error


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def smtp(certificates: LoopbackCertificates, clock: FakeClock) -> Iterator[SesSmtpServer]:
    with SesSmtpServer(region=REGION, certificates=certificates, clock=clock) as server:
        yield server


def test_a_password_derived_from_an_active_moto_key_authenticates(
    smtp: SesSmtpServer, access_key: dict[str, str]
) -> None:
    assert login(smtp, access_key["AccessKeyId"], smtp_password(access_key)) == (
        235,
        b"Authentication successful.",
    )
    assert smtp.accepted_logins(access_key["AccessKeyId"]) == 1
    [attempt] = smtp.auth_attempts
    assert (attempt.access_key_id, attempt.accepted, attempt.outcome) == (
        access_key["AccessKeyId"],
        True,
        "accepted",
    )


def test_a_wrong_password_gets_535_and_the_record_holds_no_password(
    smtp: SesSmtpServer, access_key: dict[str, str]
) -> None:
    wrong = smtp_password(access_key)[:-2] + "AA"
    assert login(smtp, access_key["AccessKeyId"], wrong) == (
        535,
        b"Authentication Credentials Invalid",
    )
    assert smtp.accepted_logins() == 0
    assert {a.outcome for a in smtp.auth_attempts} == {"wrong_password"}
    recorded = repr(smtp.auth_attempts)
    assert wrong not in recorded
    assert access_key["SecretAccessKey"] not in recorded


def test_the_password_of_another_region_is_refused(
    smtp: SesSmtpServer, access_key: dict[str, str]
) -> None:
    code, _ = login(smtp, access_key["AccessKeyId"], smtp_password(access_key, "eu-west-1"))
    assert code == 535


def test_deleted_and_inactive_keys_are_refused(
    smtp: SesSmtpServer, iam: Any, access_key: dict[str, str]
) -> None:
    key_id, password = access_key["AccessKeyId"], smtp_password(access_key)
    assert login(smtp, key_id, password)[0] == 235
    iam.update_access_key(UserName=USER, AccessKeyId=key_id, Status="Inactive")
    assert login(smtp, key_id, password)[0] == 535
    iam.update_access_key(UserName=USER, AccessKeyId=key_id, Status="Active")
    assert login(smtp, key_id, password)[0] == 235
    iam.delete_access_key(UserName=USER, AccessKeyId=key_id)
    assert login(smtp, key_id, password)[0] == 535
    outcomes = [a.outcome for a in smtp.auth_attempts if not a.accepted]
    assert "inactive_key" in outcomes
    assert "unknown_key" in outcomes


def test_a_key_younger_than_the_propagation_delay_is_refused_until_the_clock_passes_it(
    smtp: SesSmtpServer, clock: FakeClock, access_key: dict[str, str]
) -> None:
    key_id, password = access_key["AccessKeyId"], smtp_password(access_key)
    created = access_key["CreateDate"].timestamp()
    smtp.propagation_delay = 30.0
    clock.now = created + 29.0
    assert login(smtp, key_id, password)[0] == 535
    assert smtp.auth_attempts[-1].outcome == "propagating"
    clock.now = created + 31.0
    assert login(smtp, key_id, password)[0] == 235
    smtp.propagation_delay = 60.0
    assert login(smtp, key_id, password)[0] == 535


def plain_login(server: SesSmtpServer, username: str, password: str) -> int:
    """One AUTH PLAIN, its reply code (smtplib's login would try LOGIN after a refusal)."""
    with open_session(server) as session:
        session.ehlo()
        session.user, session.password = username, password
        try:
            return session.auth("PLAIN", session.auth_plain)[0]
        except smtplib.SMTPAuthenticationError as error:
            return error.smtp_code


def test_a_propagating_key_is_refused_then_flaps_over_smtp_then_settles(
    smtp: SesSmtpServer, clock: FakeClock, access_key: dict[str, str]
) -> None:
    """As SES's many servers do while a key propagates: refused for the delay, then accepted
    and refused by turns for the flapping while, then accepted at every login."""
    key_id, password = access_key["AccessKeyId"], smtp_password(access_key)
    created = access_key["CreateDate"].timestamp()
    smtp.propagation_delay, smtp.propagation_flaps = 30.0, 20.0

    clock.now = created + 29.0
    refused = [plain_login(smtp, key_id, password) for _ in range(2)]
    clock.now = created + 31.0
    flapping = [plain_login(smtp, key_id, password) for _ in range(4)]
    clock.now = created + 51.0
    settled = [plain_login(smtp, key_id, password) for _ in range(3)]

    assert refused == [535, 535]
    assert flapping == [235, 535, 235, 535]
    assert settled == [235, 235, 235]
    assert [attempt.outcome for attempt in smtp.auth_attempts[2:6]] == [
        "accepted",
        "propagating",
        "accepted",
        "propagating",
    ]


def test_refuse_all_refuses_a_good_credential_until_switched_off(
    smtp: SesSmtpServer, access_key: dict[str, str]
) -> None:
    key_id, password = access_key["AccessKeyId"], smtp_password(access_key)
    smtp.refuse_all = True
    assert login(smtp, key_id, password)[0] == 535
    smtp.refuse_all = False
    assert login(smtp, key_id, password)[0] == 235


def test_starttls_is_required_before_auth_and_auth_before_mail(
    smtp: SesSmtpServer, access_key: dict[str, str]
) -> None:
    plain = base64.b64encode(
        f"\0{access_key['AccessKeyId']}\0{smtp_password(access_key)}".encode()
    ).decode()
    with smtplib.SMTP(smtp.host, smtp.port, timeout=5) as session:
        session.ehlo()
        assert session.has_extn("starttls")
        assert not session.has_extn("auth")
        assert session.docmd("AUTH", f"PLAIN {plain}")[0] == 530
        session.starttls(context=ssl.create_default_context(cadata=smtp.ca_pem))
        session.ehlo()
        assert session.docmd("MAIL", "FROM:<kion@example.com>")[0] == 530
        assert session.has_extn("auth")
    assert smtp.auth_attempts == []


def test_implicit_tls_mode_authenticates_without_starttls(
    certificates: LoopbackCertificates, access_key: dict[str, str]
) -> None:
    with SesSmtpServer(region=REGION, implicit_tls=True, certificates=certificates) as smtp:
        with open_session(smtp) as session:
            session.ehlo()
            assert not session.has_extn("starttls")
            assert session.login(access_key["AccessKeyId"], smtp_password(access_key))[0] == 235
            session.sendmail("kion@example.com", ["ops@example.com"], b"Subject: hi\r\n\r\nhi\r\n")
        assert smtp.messages_received == 1


@pytest.mark.parametrize("implicit_tls", [False, True])
def test_a_client_that_does_not_trust_the_ca_fails_verification(
    certificates: LoopbackCertificates, implicit_tls: bool
) -> None:
    other_ca = LoopbackCertificates().ca_pem
    with (
        SesSmtpServer(certificates=certificates, implicit_tls=implicit_tls) as smtp,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        open_session(smtp, ca_pem=other_ca)


def test_a_server_with_untrusted_certificates_is_rejected(
    certificates: LoopbackCertificates,
) -> None:
    with (
        SesSmtpServer(certificates=certificates.untrusted()) as smtp,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        open_session(smtp, ca_pem=certificates.ca_pem)


def test_the_silent_server_makes_a_client_time_out() -> None:
    with SilentSmtpServer() as silent:
        # smtplib reports a timeout while reading the banner as a disconnect caused by it.
        with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out") as caught:
            smtplib.SMTP(silent.host, silent.port, timeout=0.5)
        assert isinstance(caught.value.__context__, TimeoutError)
        assert silent.connections == 1


def test_moto_key_lookup_reports_keys_with_aware_utc_times(
    iam: Any, access_key: dict[str, str]
) -> None:
    lookup = moto_key_lookup()
    record = lookup(access_key["AccessKeyId"])
    assert record is not None
    assert record.secret_access_key == access_key["SecretAccessKey"]
    assert record.active
    assert record.created_at.tzinfo is UTC
    assert abs(record.created_at.timestamp() - access_key["CreateDate"].timestamp()) < 1
    assert access_key["SecretAccessKey"] not in repr(record)
    assert lookup("AKIAIOSFODNN7EXAMPLE") is None


def test_moto_key_lookup_does_not_create_backends_for_other_accounts(iam: Any) -> None:
    assert moto_key_lookup("210987654321")("AKIAIOSFODNN7EXAMPLE") is None
    assert "210987654321" not in iam_backends


def test_keys_of_the_govcloud_partition_authenticate_in_a_govcloud_region(
    iam: Any, certificates: LoopbackCertificates
) -> None:
    gov = boto3.client("iam", region_name="us-gov-west-1")
    gov.create_user(UserName="gov-smtp")
    key = gov.create_access_key(UserName="gov-smtp")["AccessKey"]
    with SesSmtpServer(region="us-gov-west-1", certificates=certificates) as smtp:
        assert login(smtp, key["AccessKeyId"], smtp_password(key, "us-gov-west-1"))[0] == 235


def test_keys_made_through_an_in_process_moto_server_authenticate(
    certificates: LoopbackCertificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    moto_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto_server.start()
    try:
        host, port = moto_server.get_host_and_port()
        iam = boto3.client("iam", region_name=REGION, endpoint_url=f"http://{host}:{port}")
        iam.create_user(UserName="server-user")
        key = iam.create_access_key(UserName="server-user")["AccessKey"]
        with SesSmtpServer(region=REGION, certificates=certificates) as smtp:
            assert login(smtp, key["AccessKeyId"], smtp_password(key))[0] == 235
            iam.delete_access_key(UserName="server-user", AccessKeyId=key["AccessKeyId"])
            assert login(smtp, key["AccessKeyId"], smtp_password(key))[0] == 535
    finally:
        moto_server.stop()
        from moto.core.base_backend import BackendDict

        BackendDict.reset()


def test_auth_login_is_accepted_as_well_as_plain(
    smtp: SesSmtpServer, access_key: dict[str, str]
) -> None:
    with open_session(smtp) as session:
        session.ehlo()
        session.user, session.password = access_key["AccessKeyId"], smtp_password(access_key)
        code, _ = session.auth("LOGIN", session.auth_login, initial_response_ok=False)
    assert code == 235
    assert [(a.mechanism, a.accepted) for a in smtp.auth_attempts] == [("LOGIN", True)]


def test_a_malformed_auth_is_answered_without_a_recorded_attempt(smtp: SesSmtpServer) -> None:
    with open_session(smtp) as session:
        session.ehlo()
        assert session.docmd("AUTH", "PLAIN not-base64!")[0] == 501
        assert session.docmd("AUTH", "CRAM-MD5")[0] == 504
    assert smtp.auth_attempts == []
