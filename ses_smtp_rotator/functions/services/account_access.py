"""The account of an installation's IAM user: the deployment's own, or another account reached
through the access role the deployment's access stack (``<stackName>-Access``) puts there.

An installation whose secret names no ``ses_account``, or the deployment's own, takes exactly
the path it always took (the shared clients, no STS call). Any other account is reached with
STS AssumeRole on ``SES_ACCESS_ROLE_ARN`` (its ``{account}`` replaced by the account), with a
session name naming the installation, so CloudTrail in that account shows who acted. The
credentials are botocore's refreshable ones: kept per account and installation for one
invocation, and refreshed by AssumeRole again should they expire while a step still runs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import boto3
import botocore.session
from botocore.credentials import DeferredRefreshableCredentials
from botocore.exceptions import ClientError

from ses_smtp_rotator.functions.errors import AccountAccessError
from ses_smtp_rotator.functions.installation_metrics import installation_name
from ses_smtp_rotator.functions.installation_secret import InstallationSecret
from ses_smtp_rotator.functions.services.aws_clients import (
    CLIENT_CONFIG,
    SINGLE_ATTEMPT_CONFIG,
    aws_call,
    client,
    error_code,
)
from ses_smtp_rotator.functions.services.iam_keys import UserAccessKeys

DEPLOYMENT_ACCOUNT_VARIABLE = "DEPLOYMENT_ACCOUNT_ID"
ACCESS_ROLE_VARIABLE = "SES_ACCESS_ROLE_ARN"
ACCOUNT_PLACEHOLDER = "{account}"
SESSION_PREFIX = "ses-smtp-rotator-"
_SESSION_NAME_LIMIT = 64  # STS's RoleSessionName: 2 to 64 of [\w+=,.@-]
_NOT_IN_SESSION_NAME = re.compile(r"[^\w+=,.@-]", re.ASCII)
_REFUSED = frozenset({"AccessDenied", "AccessDeniedException", "RegionDisabledException"})


@dataclass(frozen=True)
class AccountClients:
    """IAM clients acting in one other account, as the access role."""

    account: str
    iam: Any
    iam_once: Any


_assumed: dict[tuple[str, str], AccountClients] = {}


def new_invocation() -> None:
    """Forget the other accounts' credentials: each invocation assumes the roles it needs
    afresh (called by the functions' handlers)."""
    _assumed.clear()


def user_access_keys(
    secret: InstallationSecret,
    secret_id: str,
    iam: Any | None = None,
    environ: Mapping[str, str] = os.environ,
) -> UserAccessKeys:
    """The access keys of the installation's IAM user, in the account that holds it. ``iam``
    is the client for the deployment's own account (default: the shared one)."""
    account = foreign_account(secret, environ)
    if account is None:
        return UserAccessKeys(secret.iam_user_name, iam=iam)
    clients = account_clients(account, installation_name(secret_id), environ)
    return UserAccessKeys(
        secret.iam_user_name,
        iam=clients.iam,
        iam_once=clients.iam_once,
        reached_as=f"in account {account} (as the access role of <stackName>-Access there)",
        acting_role=f"the access role of <stackName>-Access in account {account}",
    )


def foreign_account(
    secret: InstallationSecret, environ: Mapping[str, str] = os.environ
) -> str | None:
    """The account of the installation's IAM user when it is not the deployment's, else None."""
    own = environ.get(DEPLOYMENT_ACCOUNT_VARIABLE, "").strip()
    if not secret.ses_account or secret.ses_account == own:
        return None
    return secret.ses_account


def account_clients(
    account: str, installation: str, environ: Mapping[str, str] = os.environ
) -> AccountClients:
    """IAM clients acting in ``account`` as the access role, one set per invocation for each
    installation (its name is the role session's). The role is assumed at their first request,
    so a refusal reaches the caller as that request's error, where it handles IAM's."""
    cached = _assumed.get((account, installation))
    if cached is not None:
        return cached
    role_arn = environ.get(ACCESS_ROLE_VARIABLE, "").strip()
    credentials = DeferredRefreshableCredentials(
        refresh_using=partial(_assume, role_arn, account, session_name(installation)),
        method="sts-assume-role",
    )
    session = botocore.session.get_session()
    session._credentials = credentials  # botocore's way to give a session refreshable ones
    made = boto3.Session(botocore_session=session)
    clients = AccountClients(
        account,
        iam=made.client("iam", config=CLIENT_CONFIG),
        iam_once=made.client("iam", config=SINGLE_ATTEMPT_CONFIG),
    )
    _assumed[(account, installation)] = clients
    return clients


def access_role_arn(account: str, template: str) -> str:
    """The access role's ARN in ``account``, from the function's SES_ACCESS_ROLE_ARN."""
    if ACCOUNT_PLACEHOLDER not in template:
        raise AccountAccessError(
            f"The installation's IAM user is in account {account}, but this function has no "
            f"access role to reach it ({ACCESS_ROLE_VARIABLE} is "
            f"{'not set' if not template else f'{template!r}, without {ACCOUNT_PLACEHOLDER}'}).",
            f"Give the installation sesAccount {account} in cdk.json and deploy the stack (it "
            f"sets {ACCESS_ROLE_VARIABLE}), then deploy the access stack <stackName>-Access in "
            f"account {account}; or, if the user is in this deployment's account, remove "
            "ses_account from the secret.",
        )
    return template.replace(ACCOUNT_PLACEHOLDER, account)


def session_name(installation: str) -> str:
    """The role session's name: ``ses-smtp-rotator-<installation>``, in STS's characters and
    length, so CloudTrail in the other account names the installation that acted."""
    name = SESSION_PREFIX + _NOT_IN_SESSION_NAME.sub("-", installation)
    return name[:_SESSION_NAME_LIMIT]


def _assume(template: str, account: str, name: str) -> dict[str, str]:
    """AssumeRole, as botocore's refreshable credentials want the answer."""
    role_arn = access_role_arn(account, template)
    with aws_call("sts:AssumeRole", f"role {role_arn}"), _assume_call(role_arn, account):
        response = client("sts").assume_role(RoleArn=role_arn, RoleSessionName=name)
    credentials = response["Credentials"]
    return {
        "access_key": credentials["AccessKeyId"],
        "secret_key": credentials["SecretAccessKey"],
        "token": credentials["SessionToken"],
        "expiry_time": credentials["Expiration"].isoformat(),
    }


@contextmanager
def _assume_call(role_arn: str, account: str) -> Iterator[None]:
    """STS's refusal (no such role, a trust that does not name this function's role, a
    service control policy, an account outside the organisation) as one error naming the fix."""
    try:
        yield
    except ClientError as error:
        if error_code(error) not in _REFUSED:
            raise
        raise AccountAccessError(
            f"STS refused sts:AssumeRole on {role_arn} ({error_code(error)}), so nothing could "
            f"be done in account {account}, which holds the installation's IAM user.",
            f"Deploy the access stack <stackName>-Access in account {account} (cdk deploy with "
            "that account's credentials, or the StackSet); its role's trust must name this "
            "deployment's rotation and watch function roles. Check too that no service control "
            "policy denies sts:AssumeRole or the key actions, that the account is still in the "
            "organisation, and that ses_account names the right account.",
        ) from None
