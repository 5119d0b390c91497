"""An installation whose IAM user lives in another account than the deployment's.

moto isolates accounts: credentials from STS AssumeRole act in the role's account. The
deployment's functions run as their role in the deployment account (the process's AWS
credentials are that role's session), and reach the SES account through its access role, whose
trust :func:`role_trust_checked` makes moto's STS enforce as the real one does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import iam_backends

from ses_smtp_rotator.functions.services import account_access, aws_clients
from ses_smtp_rotator.functions.smtp_rotation import handler
from ses_smtp_rotator.local.role_trust import role_trust_checked
from ses_smtp_rotator.local.smtp_server import moto_key_lookup

DEPLOYMENT_ACCOUNT = DEFAULT_ACCOUNT_ID
SES_ACCOUNT = "222233334444"
ROLE_TEMPLATE = "arn:aws:iam::{account}:role/ses-smtp-rotator-access"
ACCESS_ROLE = ROLE_TEMPLATE.format(account=SES_ACCOUNT)
FUNCTION_ROLES = ("rotation-function", "watch-function")


@dataclass(frozen=True)
class Accounts:
    """The two accounts' IAM, as an administrator of each sees it."""

    ses_iam: Any
    deployment_iam: Any

    def access_keys_in(self, account: str) -> set[str]:
        """Every access key of every IAM user in ``account``, read from moto's backend."""
        users = iam_backends[account]["aws"].users.values()
        return {key.access_key_id for user in users for key in user.access_keys}

    def set_trust(self, *principals: str) -> None:
        """Give the access role in the SES account a trust naming ``principals``."""
        self.ses_iam.update_assume_role_policy(
            RoleName=ACCESS_ROLE.rsplit("/", 1)[1], PolicyDocument=trust(*principals)
        )


def trust(*principals: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": list(principals)},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def function_role_arn(name: str = FUNCTION_ROLES[0]) -> str:
    return f"arn:aws:iam::{DEPLOYMENT_ACCOUNT}:role/{name}"


@contextmanager
def two_accounts(monkeypatch: pytest.MonkeyPatch, smtp: Any, *, role: bool = True) -> Iterator:
    """The SES account with its access role (trusting the function roles; none with ``role``
    False), the function's environment naming both, and the process acting as the rotation
    function's role. SES (the SMTP double) knows the keys of the SES account."""
    ses_admin = boto3.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{SES_ACCOUNT}:role/administrator", RoleSessionName="setup"
    )["Credentials"]
    ses_iam = boto3.client(
        "iam",
        aws_access_key_id=ses_admin["AccessKeyId"],
        aws_secret_access_key=ses_admin["SecretAccessKey"],
        aws_session_token=ses_admin["SessionToken"],
    )
    deployment_iam = boto3.client("iam")
    for name in FUNCTION_ROLES:
        deployment_iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust("*"))
    if role:
        ses_iam.create_role(
            RoleName=ACCESS_ROLE.rsplit("/", 1)[1],
            AssumeRolePolicyDocument=trust(*map(function_role_arn, FUNCTION_ROLES)),
        )
    function = boto3.client("sts").assume_role(
        RoleArn=function_role_arn(), RoleSessionName="rotation"
    )["Credentials"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", function["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", function["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", function["SessionToken"])
    monkeypatch.setenv("DEPLOYMENT_ACCOUNT_ID", DEPLOYMENT_ACCOUNT)
    monkeypatch.setenv("SES_ACCESS_ROLE_ARN", ROLE_TEMPLATE)
    monkeypatch.setattr(smtp, "key_lookup", moto_key_lookup(SES_ACCOUNT))
    _forget_clients()
    try:
        with role_trust_checked():
            yield Accounts(ses_iam, deployment_iam)
    finally:
        _forget_clients()


def _forget_clients() -> None:
    """The function's shared clients (and boto3's default session, and the warm Kion API key
    reader) are made with the credentials of their time."""
    boto3.DEFAULT_SESSION = None
    account_access.new_invocation()
    aws_clients.client.cache_clear()
    aws_clients.single_attempt_client.cache_clear()
    handler._kion_api_keys.cache_clear()  # its reader holds the secretsmanager client too
