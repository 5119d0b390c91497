"""The SES SMTP password derivation, against the published vector and botocore's own SigV4."""

import base64

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from ses_smtp_rotator.functions.regions import ses_regions
from ses_smtp_rotator.functions.services.smtp_password import derive_smtp_password

SES_REGIONS = sorted(ses_regions())


def sigv4_smtp_password(secret_access_key: str, region: str) -> str:
    """An independent derivation: botocore's SigV4 signer with SES's fixed date and message."""
    signer = SigV4Auth(Credentials("AKIDEXAMPLE", secret_access_key), "ses", region)
    request = AWSRequest(method="POST", url="https://email.example")
    request.context["timestamp"] = "11111111T000000Z"
    signature = signer.signature("SendRawEmail", request)
    return base64.b64encode(b"\x04" + bytes.fromhex(signature)).decode()


def test_matches_the_published_vector():
    password = derive_smtp_password("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1")
    assert password == "BLBM/9hSUELfq8Gw+rU1YcBjkOxGbhT2XG763xVLGWL9"


@pytest.mark.parametrize("region", SES_REGIONS)
def test_matches_botocore_sigv4_in_every_ses_region(region):
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    assert derive_smtp_password(secret, region) == sigv4_smtp_password(secret, region)


@settings(max_examples=200, deadline=None)
@given(
    secret=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=40, max_size=40
    ),
    region=st.sampled_from(SES_REGIONS),
)
def test_matches_botocore_sigv4_for_any_key(secret, region):
    assert derive_smtp_password(secret, region) == sigv4_smtp_password(secret, region)


def test_the_password_is_region_specific():
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    assert len({derive_smtp_password(secret, region) for region in SES_REGIONS}) == len(SES_REGIONS)


def test_ses_regions_cover_commercial_and_govcloud():
    assert {"us-east-1", "eu-west-1", "us-gov-west-1"} <= ses_regions()
    assert "mars-east-1" not in ses_regions()
