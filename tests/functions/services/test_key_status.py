"""Deactivating and reactivating an access key, and its IAM last-used record, against moto's
IAM, with the SES SMTP stand-in judging the key's password as SES does."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from ses_smtp_rotator.functions.services.iam_keys import UserAccessKeys
from ses_smtp_rotator.functions.services.smtp_password import derive_smtp_password
from ses_smtp_rotator.local.smtp_server import SesSmtpServer

USER = "ses-smtp-user"


@pytest.fixture
def iam(aws: None) -> Any:
    iam = boto3.client("iam")
    iam.create_user(UserName=USER)
    return iam


@pytest.fixture
def key(iam: Any) -> dict[str, str]:
    return iam.create_access_key(UserName=USER)["AccessKey"]


def test_a_deactivated_keys_password_is_refused_until_it_is_reactivated(
    iam: Any, key: dict[str, str], smtp: SesSmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = UserAccessKeys(USER, iam=iam)
    password = derive_smtp_password(key["SecretAccessKey"], smtp.region)
    settled = smtp.propagation_delay + 1
    monkeypatch.setattr(smtp, "clock", lambda: key["CreateDate"].timestamp() + settled)

    keys.deactivate(key["AccessKeyId"])
    assert [k.active for k in keys.list()] == [False]
    assert smtp.check_credential(key["AccessKeyId"], password) == "inactive_key"

    keys.reactivate(key["AccessKeyId"])
    assert [k.active for k in keys.list()] == [True]
    assert smtp.check_credential(key["AccessKeyId"], password) == "accepted"


def test_deactivating_a_key_already_gone_is_no_error(iam: Any, key: dict[str, str]) -> None:
    keys = UserAccessKeys(USER, iam=iam)
    keys.delete(key["AccessKeyId"])
    keys.deactivate(key["AccessKeyId"])  # finishSecret run again after the watch deleted it
    assert keys.list() == []


def test_a_key_never_used_says_so(iam: Any, key: dict[str, str]) -> None:
    record = UserAccessKeys(USER, iam=iam).last_used(key["AccessKeyId"])
    assert record.used_at is None
    assert record.describe() == "never used by a signed AWS request"


def test_a_key_used_for_an_aws_request_names_when_where_and_what(
    iam: Any, key: dict[str, str]
) -> None:
    as_the_key = boto3.client(
        "sts",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        aws_session_token=None,
    )
    as_the_key.get_caller_identity()

    record = UserAccessKeys(USER, iam=iam).last_used(key["AccessKeyId"])

    if record.used_at is None:
        pytest.skip("this moto does not record a key's last use")
    assert record.describe().startswith(f"last used {record.used_at:%Y-%m-%d %H:%M} UTC by ")
