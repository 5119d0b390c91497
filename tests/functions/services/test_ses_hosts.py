"""Which SES region an SMTP host name belongs to, and the verdict on where Kion sends."""

import json

import pytest

from ses_smtp_rotator.functions.errors import (
    InvalidSecretError,
    KionEndpointError,
    KionRequestError,
)
from ses_smtp_rotator.functions.installation_secret import InstallationSecret
from ses_smtp_rotator.functions.regions import default_smtp_host
from ses_smtp_rotator.functions.services.kion_settings import KionSmtpSettings
from ses_smtp_rotator.functions.services.ses_hosts import (
    FIPS,
    KION_HOST_MISSING,
    KION_HOST_OTHER_PARTITION,
    KION_HOST_OTHER_REGION,
    KION_HOST_UNDECLARED,
    KION_SENDER_MISSING,
    KION_SMTP_DISABLED,
    PROOF_HOST_OTHER_REGION,
    PUBLIC,
    VPC_ENDPOINT,
    kion_endpoint_verdict,
    ses_smtp_host,
)
from ses_smtp_rotator.functions.services.smtp_password import derive_smtp_password, is_smtp_password

SECRET = {
    "username": "",
    "password": "",
    "ses_region": "us-east-1",
    "iam_user_name": "kion-ses-smtp",
    "kion_url": "https://kion.example.com",
    "kion_api_key_secret_id": "kion/api-key",
}


def secret(**changes):
    return InstallationSecret.parse(json.dumps({**SECRET, **changes}))


def kion(**changes):
    settings = {
        "smtp_username": "AKIAEXAMPLE",
        "smtp_host": "email-smtp.us-east-1.amazonaws.com",
        "smtp_port": 587,
        "smtp_enabled": True,
        "smtp_from": "kion@example.com",
        **changes,
    }
    return KionSmtpSettings.from_app_config(
        {k: v for k, v in settings.items() if v is not ...}, "https://kion.example"
    )


@pytest.mark.parametrize(
    ("host", "region", "partition", "kind"),
    [
        ("email-smtp.us-east-1.amazonaws.com", "us-east-1", "aws", PUBLIC),
        ("email-smtp.eu-west-1.amazonaws.com", "eu-west-1", "aws", PUBLIC),
        ("email-smtp-fips.us-east-2.amazonaws.com", "us-east-2", "aws", FIPS),
        ("email-smtp.us-gov-west-1.amazonaws.com", "us-gov-west-1", "aws-us-gov", PUBLIC),
        ("email-smtp-fips.us-gov-east-1.amazonaws.com", "us-gov-east-1", "aws-us-gov", FIPS),
        ("email-smtp.cn-north-1.amazonaws.com.cn", "cn-north-1", "aws-cn", PUBLIC),
        (
            "vpce-0123456789abcdef0-abcdefgh.email-smtp.eu-central-1.vpce.amazonaws.com",
            "eu-central-1",
            "aws",
            VPC_ENDPOINT,
        ),
        ("Email-SMTP.ap-southeast-2.amazonaws.com.", "ap-southeast-2", "aws", PUBLIC),
    ],
)
def test_ses_host_names_name_their_region(host, region, partition, kind):
    found = ses_smtp_host(host)
    assert (found.region, found.partition, found.kind) == (region, partition, kind)


@pytest.mark.parametrize(
    "host",
    [
        "smtp.example.com",
        "127.0.0.1",
        "email-smtp.cn-north-1.amazonaws.com",  # a China region under the commercial suffix
        "email-smtp.us-east-1.amazonaws.com.evil.example",
        "vpce-1.email-smtp.us-east-1.amazonaws.com",  # a VPC endpoint name needs .vpce.
        "email.us-east-1.amazonaws.com",  # the SES API, not SMTP
    ],
)
def test_other_host_names_are_not_ses(host):
    assert ses_smtp_host(host) is None


def test_the_default_smtp_host_uses_the_partitions_suffix():
    assert default_smtp_host("cn-northwest-1") == "email-smtp.cn-northwest-1.amazonaws.com.cn"
    assert default_smtp_host("us-gov-west-1") == "email-smtp.us-gov-west-1.amazonaws.com"


@pytest.mark.parametrize(
    ("kion_changes", "secret_changes", "kind"),
    [
        ({"smtp_enabled": False}, {}, KION_SMTP_DISABLED),
        ({"smtp_host": ...}, {}, KION_HOST_MISSING),
        ({"smtp_host": "email-smtp.eu-west-1.amazonaws.com"}, {}, KION_HOST_OTHER_REGION),
        ({"smtp_host": "email-smtp-fips.us-east-2.amazonaws.com"}, {}, KION_HOST_OTHER_REGION),
        ({"smtp_host": "email-smtp.us-gov-west-1.amazonaws.com"}, {}, KION_HOST_OTHER_PARTITION),
        ({"smtp_host": "email-smtp.cn-north-1.amazonaws.com.cn"}, {}, KION_HOST_OTHER_PARTITION),
        ({"smtp_host": "relay.corp.example"}, {}, KION_HOST_UNDECLARED),
        ({}, {"smtp_host": "email-smtp.eu-west-1.amazonaws.com"}, PROOF_HOST_OTHER_REGION),
        ({"smtp_from": ...}, {}, KION_SENDER_MISSING),
    ],
)
def test_each_mismatch_is_refused_with_its_kind(kion_changes, secret_changes, kind):
    verdict = kion_endpoint_verdict(kion(**kion_changes), secret(**secret_changes))
    assert (verdict.ok, verdict.kind) == (False, kind)
    with pytest.raises(KionEndpointError) as raised:
        verdict.require()
    assert raised.value.kind == kind
    assert raised.value.fix


@pytest.mark.parametrize(
    ("kion_changes", "secret_changes"),
    [
        ({}, {}),
        ({"smtp_host": "email-smtp-fips.us-east-1.amazonaws.com", "smtp_port": 25}, {}),
        ({"smtp_host": "relay.corp.example"}, {"smtp_host": "RELAY.corp.example"}),
        ({"smtp_from": ...}, {"send_path_check": False}),
        ({"smtp_enabled": ...}, {}),  # a Kion that does not say is taken to send
        (
            {"smtp_host": "email-smtp.us-gov-west-1.amazonaws.com"},
            {"ses_region": "us-gov-west-1"},
        ),
    ],
)
def test_matching_endpoints_are_accepted(kion_changes, secret_changes):
    verdict = kion_endpoint_verdict(kion(**kion_changes), secret(**secret_changes))
    assert verdict.ok, verdict.summary
    verdict.require()


@pytest.mark.parametrize("username", [..., None, 42])
def test_a_reply_without_a_username_is_an_error(username):
    with pytest.raises(KionRequestError):
        kion(smtp_username=username)


def test_an_empty_username_means_kion_has_no_key():
    assert kion(smtp_username="").username == ""


@pytest.mark.parametrize("mask", ["", "********", "•••", "<hidden>", "REDACTED", "x" * 44, None])
def test_masked_passwords_count_as_hidden(mask):
    assert kion(smtp_password=mask).password is None


def test_a_shown_password_is_read():
    password = derive_smtp_password("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1")
    assert is_smtp_password(password)
    assert kion(smtp_password=password).password == password


@pytest.mark.parametrize("field", ["send_path_check", "iam_user_dedicated"])
def test_the_new_switches_must_be_booleans(field):
    with pytest.raises(InvalidSecretError) as raised:
        secret(**{field: "yes"})
    assert raised.value.field == field
