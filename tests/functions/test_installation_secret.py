"""Validation of the installation secret: each bad value gets one error naming field and fix."""

import json

import pytest

from ses_smtp_rotator.functions.errors import InvalidSecretError
from ses_smtp_rotator.functions.installation_secret import InstallationSecret
from ses_smtp_rotator.functions.services.ses_smtp import SmtpEndpoint

VALID = {
    "username": "AKIAEXAMPLE0000000001",
    "password": "BLBM/9hSUELfq8Gw+rU1YcBjkOxGbhT2XG763xVLGWL9",
    "ses_region": "us-east-1",
    "iam_user_name": "kion-ses-smtp",
    "kion_url": "https://kion.example.com/",
    "kion_api_key_secret_id": "kion/api-key",
}
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def parse(**changes):
    fields = {**VALID, **changes}
    return InstallationSecret.parse(json.dumps({k: v for k, v in fields.items() if v is not ...}))


def test_defaults_follow_the_region():
    secret = parse()
    assert secret.smtp_host == "email-smtp.us-east-1.amazonaws.com"
    assert secret.smtp_port == 587
    assert not secret.implicit_tls
    assert secret.kion_url == "https://kion.example.com"


@pytest.mark.parametrize(
    ("port", "implicit"), [(465, True), (2465, True), (25, False), (2587, False)]
)
def test_the_port_decides_the_tls_mode(port, implicit):
    assert parse(smtp_port=port).implicit_tls is implicit


@pytest.mark.parametrize(
    ("host", "port", "proven_on"),
    [
        ("email-smtp.us-east-1.amazonaws.com", 25, (587, False)),
        ("email-smtp.us-east-1.amazonaws.com", 2587, (2587, False)),
        ("email-smtp.us-east-1.amazonaws.com", 465, (465, True)),
        ("relay.corp.example", 25, (25, False)),
        ("relay.corp.example", 465, (465, True)),
    ],
)
def test_the_credential_is_proven_where_kion_sends_except_ses_on_port_25(host, port, proven_on):
    """Lambda may not reach port 25, so an SES endpoint there is proven on 587 (STARTTLS); any
    other endpoint is proven on its own port and TLS mode."""
    endpoint = SmtpEndpoint.of(parse(smtp_host=host, smtp_port=port), timeout=1)
    assert (endpoint.host, endpoint.port, endpoint.implicit_tls) == (host, *proven_on)


def test_smtp_tls_overrides_the_port():
    assert parse(smtp_port=10025, smtp_tls="implicit").implicit_tls
    assert not parse(smtp_port=465, smtp_tls="starttls").implicit_tls


def test_govcloud_regions_are_accepted():
    assert parse(ses_region="us-gov-west-1").smtp_host == "email-smtp.us-gov-west-1.amazonaws.com"


def test_an_empty_credential_means_adoption():
    secret = parse(username="", password="")
    assert secret.access_key_id == ""


def test_with_credential_keeps_every_other_field():
    secret = parse(smtp_port=2587, extra_note="kept")
    fields = json.loads(secret.with_credential("AKIANEW", "new-password"))
    assert fields == {
        **VALID,
        "smtp_port": 2587,
        "extra_note": "kept",
        "username": "AKIANEW",
        "password": "new-password",
        "replaces_access_key_id": "",
    }


@pytest.mark.parametrize(
    ("secret_string", "field", "words"),
    [
        ("not json", None, "not valid JSON"),
        ("[1, 2]", None, "not a JSON object"),
        ("", None, "not valid JSON"),
    ],
)
def test_malformed_values(secret_string, field, words):
    with pytest.raises(InvalidSecretError) as raised:
        InstallationSecret.parse(secret_string)
    assert raised.value.field == field
    assert words in str(raised.value)
    assert "Fix:" in str(raised.value)


@pytest.mark.parametrize(
    "field", ["ses_region", "iam_user_name", "kion_url", "kion_api_key_secret_id"]
)
def test_each_missing_setting_is_named(field):
    with pytest.raises(InvalidSecretError, match=f"'{field}' is missing") as raised:
        parse(**{field: ...})
    assert raised.value.field == field


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"ses_region": 42}, "ses_region", "non-empty string"),
        ({"iam_user_name": "  "}, "iam_user_name", "non-empty string"),
        ({"ses_region": "mars-east-1"}, "ses_region", "not a region with Amazon SES"),
        ({"kion_url": "http://kion.example.com"}, "kion_url", "https://"),
        ({"kion_url": "kion.example.com"}, "kion_url", "https://"),
        ({"kion_url": "https://kion.example.com/?a=1"}, "kion_url", "https://"),
        ({"smtp_port": "587"}, "smtp_port", "port number"),
        ({"smtp_port": 70000}, "smtp_port", "port number"),
        ({"smtp_port": True}, "smtp_port", "port number"),
        ({"smtp_host": 5}, "smtp_host", "must be a string"),
        ({"smtp_tls": "ssl"}, "smtp_tls", "'starttls' or 'implicit'"),
        ({"username": ""}, "username", "other half"),
        ({"password": ""}, "password", "other half"),
        ({"username": 7}, "username", "must be a string"),
        ({"kion_ca_bundle": "not a pem"}, "kion_ca_bundle", "PEM"),
        ({"smtp_ca_bundle": "not a pem"}, "smtp_ca_bundle", "PEM"),
        ({"ses_account": "12345678901"}, "ses_account", "12-digit AWS account id"),
        ({"ses_account": "arn:aws:iam::123456789012:root"}, "ses_account", "12-digit"),
        ({"ses_account": 123456789012}, "ses_account", "must be a string"),
    ],
)
def test_bad_values_name_the_field_and_the_fix(changes, field, words):
    with pytest.raises(InvalidSecretError) as raised:
        parse(**changes)
    assert raised.value.field == field
    assert words in str(raised.value)
    assert raised.value.fix


def test_the_account_of_the_user_is_optional():
    assert parse().ses_account == ""
    assert parse(ses_account=" 123456789012 ").ses_account == "123456789012"


def test_no_secret_value_in_validation_errors():
    with pytest.raises(InvalidSecretError) as raised:
        parse(ses_region="nowhere-1")
    assert VALID["password"] not in str(raised.value)


def test_private_ca_bundles_are_kept():
    secret = parse(kion_ca_bundle=PEM, smtp_ca_bundle=PEM)
    assert secret.kion_ca_bundle == PEM
    assert secret.smtp_ca_bundle == PEM
