"""The SES SMTP stand-in in several regions, while keys propagate, and when mail is sent: it
answers as SES does and records every message."""

from __future__ import annotations

import json
import smtplib
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3

from ses_smtp_rotator.functions.services.smtp_password import derive_smtp_password
from ses_smtp_rotator.local import (
    KionStandIn,
    LoopbackCertificates,
    SesSmtpRegions,
    SesSmtpServer,
)

SIMULATOR = "success@simulator.amazonses.com"


@pytest.fixture
def regions(certificates: LoopbackCertificates) -> Iterator[SesSmtpRegions]:
    with SesSmtpRegions(("us-east-1", "eu-west-1"), certificates=certificates) as started:
        yield started


def send(server: SesSmtpServer, key: dict[str, str], sender: str, recipient: str) -> int:
    """Log in with ``key`` (password for the server's region) and send; SES's reply code."""
    context = ssl.create_default_context(cadata=server.ca_pem)
    with smtplib.SMTP(server.host, server.port, timeout=5) as session:
        session.starttls(context=context)
        session.login(
            key["AccessKeyId"], derive_smtp_password(key["SecretAccessKey"], server.region)
        )
        try:
            session.sendmail(sender, [recipient], b"Subject: check\r\n\r\nbody\r\n")
        except smtplib.SMTPDataError as error:
            return error.smtp_code
    return 250


def test_each_region_has_its_host_name_port_and_passwords(
    regions: SesSmtpRegions, access_key: dict[str, str]
) -> None:
    east, west = regions.servers["us-east-1"], regions.servers["eu-west-1"]
    assert east.port != west.port
    assert regions.server_for("email-smtp.eu-west-1.amazonaws.com") is west
    assert regions.server_for("email-smtp-fips.us-east-1.amazonaws.com") is east
    assert regions.server_for("email-smtp.ap-south-1.amazonaws.com") is None
    east_password = derive_smtp_password(access_key["SecretAccessKey"], "us-east-1")
    assert east.check_credential(access_key["AccessKeyId"], east_password) == "accepted"
    assert west.check_credential(access_key["AccessKeyId"], east_password) == "wrong_password"


def test_a_propagating_key_is_accepted_and_refused_by_turns_until_settled(
    regions: SesSmtpRegions, access_key: dict[str, str]
) -> None:
    east = regions.servers["us-east-1"]
    east.propagation_flaps = 3600.0
    password = derive_smtp_password(access_key["SecretAccessKey"], "us-east-1")
    answers = [east._check("PLAIN", access_key["AccessKeyId"].encode(), password.encode())]
    answers += [east._check("PLAIN", access_key["AccessKeyId"].encode(), password.encode())]
    answers += [east._check("PLAIN", access_key["AccessKeyId"].encode(), password.encode())]
    assert answers == [True, False, True]
    assert east.check_credential(access_key["AccessKeyId"], password) == "propagating"
    east.propagation_flaps = 0.0
    assert east.check_credential(access_key["AccessKeyId"], password) == "accepted"


def test_mail_is_judged_like_ses_and_recorded(
    regions: SesSmtpRegions, access_key: dict[str, str], iam: Any
) -> None:
    east = regions.servers["us-east-1"]
    assert send(east, access_key, "kion@example.com", SIMULATOR) == 250
    assert send(east, access_key, "kion@unverified.test", SIMULATOR) == 554
    east.sandbox = True
    assert send(east, access_key, "kion@example.com", "someone@elsewhere.test") == 554
    assert send(east, access_key, "kion@example.com", SIMULATOR) == 250
    east.from_addresses["kion-smtp"] = {"other@example.com"}
    assert send(east, access_key, "kion@example.com", SIMULATOR) == 554
    east.from_addresses.clear()
    east.throttle_next = 1
    assert send(east, access_key, "kion@example.com", SIMULATOR) == 454
    east.sending_paused = True
    assert send(east, access_key, "kion@example.com", SIMULATOR) == 554

    replies = [message.reply for message in east.messages]
    assert [reply[:3] for reply in replies] == ["250", "554", "554", "250", "554", "454", "554"]
    assert "The following identities failed the check in region US-EAST-1" in replies[1]
    assert "not authorized to perform `ses:SendRawEmail'" in replies[4]
    assert replies[6].startswith("554 Sending paused for this account")
    assert east.messages_received == 2
    assert {m.access_key_id for m in east.messages} == {access_key["AccessKeyId"]}
    assert regions.messages == east.messages
    east.reset()
    assert (east.messages, east.sandbox, east.sending_paused) == ([], False, False)


def test_the_kion_stand_in_masks_in_any_style_and_omits_fields(
    certificates: LoopbackCertificates,
) -> None:
    with KionStandIn(
        {"smtp_password": "secret-value", "smtp_host": "email-smtp.eu-west-1.amazonaws.com"},
        mask_password=True,
        certificates=certificates,
    ) as kion:
        kion.password_mask = "********"
        kion.omitted_fields.update({"smtp_username", "smtp_from"})
        pool = urllib3.PoolManager(ssl_context=ssl.create_default_context(cadata=kion.ca_pem))
        reply = pool.request(
            "GET",
            kion.url + "/api/v3/app-config",
            headers={"Authorization": f"Bearer {kion.api_key}"},
        )
        data = json.loads(reply.data)["data"]
    assert data["smtp_password"] == "********"
    assert "smtp_username" not in data
    assert "smtp_from" not in data
    assert data["smtp_host"] == "email-smtp.eu-west-1.amazonaws.com"
    assert kion.app_config["smtp_username"] == ""
