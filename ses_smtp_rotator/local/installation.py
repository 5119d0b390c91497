"""Provision a Kion installation on emulated AWS the way the CDK stack does, for tests and the demo.

The stack creates the SES SMTP IAM user, an installation secret with the settings filled and the
credential empty, and a secret for Kion's API key. Kion itself already sends mail with a key made by
hand: the first rotation adopts it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from ses_smtp_rotator.functions.services.smtp_password import derive_smtp_password

from .kion_server import KionStandIn
from .smtp_server import SesSmtpServer


@dataclass(frozen=True)
class LocalInstallation:
    """Names and ids of one provisioned installation."""

    name: str
    secret_id: str
    kion_api_key_secret_id: str
    iam_user_name: str
    ses_region: str


def provision_installation(
    kion: KionStandIn,
    smtp: SesSmtpServer,
    *,
    name: str = "kion",
    adopt: bool = True,
    api_key_as_json: bool = False,
    kion_smtp: SesSmtpServer | None = None,
    iam_user_dedicated: bool = True,
    iam: Any | None = None,
    secretsmanager: Any | None = None,
    ses_account: str = "",
) -> LocalInstallation:
    """Create the IAM user, both secrets and Kion's hand-made key.

    Kion sends through ``kion_smtp`` (default ``smtp``), named by its SES host name on port 587 as
    a real Kion would be; its hand-made key's password is derived for that server's region. The
    secret proves credentials at ``smtp``'s loopback address and port, in ``smtp``'s region.
    With ``adopt`` the installation secret's credential is empty (a fresh deployment); without it
    the secret already holds the key Kion uses, as after an earlier rotation. The stack creates
    the IAM user for the installation alone (``iam_user_dedicated``); pass False for an imported
    user. With ``ses_account`` the secret names the account of the user (which ``iam`` must
    act in), as for an installation whose SES identity is in another account than the stack's.
    """
    iam = iam or boto3.client("iam")
    secretsmanager = secretsmanager or boto3.client("secretsmanager")
    user_name = f"{name}-ses-smtp"
    iam.create_user(UserName=user_name)
    hand_made = iam.create_access_key(UserName=user_name)["AccessKey"]
    kion_smtp = kion_smtp or smtp
    smtp_password = derive_smtp_password(hand_made["SecretAccessKey"], kion_smtp.region)
    kion.app_config.update(
        smtp_enabled=True,
        smtp_host=kion_smtp.host_name,
        smtp_port=587,
        smtp_username=hand_made["AccessKeyId"],
        smtp_password=smtp_password,
    )
    api_key_value = json.dumps({"api_key": kion.api_key}) if api_key_as_json else kion.api_key
    api_key_secret = secretsmanager.create_secret(
        Name=f"{name}/kion-api-key", SecretString=api_key_value
    )
    settings = {
        "username": "" if adopt else hand_made["AccessKeyId"],
        "password": "" if adopt else smtp_password,
        "ses_region": smtp.region,
        "iam_user_name": user_name,
        "kion_url": kion.url,
        "kion_api_key_secret_id": api_key_secret["ARN"],
        "smtp_host": smtp.host,
        "smtp_port": smtp.port,
        "smtp_tls": "implicit" if smtp.implicit_tls else "starttls",
        "kion_ca_bundle": kion.ca_pem,
        "smtp_ca_bundle": smtp.ca_pem,
        "iam_user_dedicated": iam_user_dedicated,
    }
    if ses_account:
        settings["ses_account"] = ses_account
    installation_secret = secretsmanager.create_secret(
        Name=f"{name}/ses-smtp-credential", SecretString=json.dumps(settings)
    )
    return LocalInstallation(
        name=name,
        secret_id=installation_secret["ARN"],
        kion_api_key_secret_id=api_key_secret["ARN"],
        iam_user_name=user_name,
        ses_region=smtp.region,
    )
