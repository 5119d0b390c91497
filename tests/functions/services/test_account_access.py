"""Which account an installation's keys are asked in, and the role session that names it."""

import json

import pytest

from ses_smtp_rotator.functions.errors import AccountAccessError
from ses_smtp_rotator.functions.installation_secret import InstallationSecret
from ses_smtp_rotator.functions.services import account_access
from ses_smtp_rotator.functions.services.aws_clients import client

SETTINGS = {
    "ses_region": "us-east-1",
    "iam_user_name": "kion-ses-smtp",
    "kion_url": "https://kion.example.com",
    "kion_api_key_secret_id": "kion/api-key",
}
OWN = {"DEPLOYMENT_ACCOUNT_ID": "111122223333"}


def secret(**fields: str) -> InstallationSecret:
    return InstallationSecret.parse(json.dumps({**SETTINGS, **fields}))


@pytest.mark.parametrize("ses_account", ["", "111122223333"])
def test_the_deployments_own_account_uses_the_shared_client(ses_account):
    keys = account_access.user_access_keys(
        secret(ses_account=ses_account), "kion/ses-smtp-credential", environ=OWN
    )
    assert keys._client is client("iam")
    assert account_access.foreign_account(secret(ses_account=ses_account), OWN) is None


def test_another_account_gets_clients_of_its_own_once_per_invocation():
    account_access.new_invocation()
    other = secret(ses_account="444455556666")
    first = account_access.user_access_keys(other, "kion/ses-smtp-credential", environ=OWN)
    again = account_access.user_access_keys(other, "kion/ses-smtp-credential", environ=OWN)
    assert first._client is not client("iam")
    assert again._client is first._client
    account_access.new_invocation()
    later = account_access.user_access_keys(other, "kion/ses-smtp-credential", environ=OWN)
    assert later._client is not first._client


def test_the_session_name_names_the_installation_within_stss_rules():
    assert account_access.session_name("prod/kion") == "ses-smtp-rotator-prod-kion"
    assert account_access.session_name("kion-é") == "ses-smtp-rotator-kion--"
    long_name = account_access.session_name("x" * 80 + " é!")
    assert len(long_name) == 64
    assert long_name.startswith("ses-smtp-rotator-xxx")


def test_a_role_setting_without_the_placeholder_names_the_fix():
    with pytest.raises(AccountAccessError) as refused:
        account_access.access_role_arn("444455556666", "arn:aws:iam::444455556666:role/fixed")
    assert "without {account}" in refused.value.cause
    assert "sesAccount 444455556666" in refused.value.fix
