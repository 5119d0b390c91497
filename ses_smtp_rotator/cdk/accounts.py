"""The names that tie a deployment to the SES accounts its installations live in.

An installation whose ``ses_account`` is not the stack's is rotated through a role in that account,
made by the deployment's access stack (``access.py``). The two sides meet by name only, since
neither template can read the other: the functions' roles and the access role have fixed names
and the IAM path ``/ses-smtp-rotator/<deployment>/``, and a user the access stack makes for an
installation has a fixed name too. ``role_name`` is the one convention for all of them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from aws_cdk import Aws, Token
from aws_cdk import aws_iam as iam

from .deployment import Deployment
from .installation import KionInstallation

ORGANIZATION_ID = re.compile(r"^o-[a-z0-9]{10,32}$")
# IAM role and user names: at most 64 characters, unique in an account whatever their path.
IAM_NAME_LIMIT = 64
HASH_LENGTH = 8
ROTATION_ROLE = "rotation"
WATCH_ROLE = "watch"
ACCESS_ROLE = "ses-access"
ACCOUNT_PLACEHOLDER = "{account}"
"""Stands for the SES account in ``SES_ACCESS_ROLE_ARN``; the functions put the account in."""


def iam_name(*parts: str) -> str:
    """``parts`` joined by hyphens; past 64 characters the first part is shortened and a hash of
    the whole name keeps it unique (``SesSmtpRotatorProd...-1a2b3c4d-watch``)."""
    name = "-".join(parts)
    if len(name) <= IAM_NAME_LIMIT:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:HASH_LENGTH]
    rest = "-".join(parts[1:])
    keep = IAM_NAME_LIMIT - len(rest) - HASH_LENGTH - 2
    return f"{parts[0][:keep]}-{digest}-{rest}"


def role_name(deployment: Deployment, purpose: str) -> str:
    """The name of the deployment's ``purpose`` role: the rotation's, the watch's, or the access
    role in each SES account."""
    return iam_name(deployment.name, purpose)


def role_path(deployment: Deployment) -> str:
    """The IAM path of those roles, the deployment's own (its users' too)."""
    return deployment.user_path


def function_role_arn(deployment: Deployment, purpose: str, account: str) -> str:
    """The ARN of a function role of the deployment in its ``account``."""
    return (
        f"arn:{Aws.PARTITION}:iam::{account}:role{role_path(deployment)}"
        f"{role_name(deployment, purpose)}"
    )


def access_role_arn(deployment: Deployment, account: str) -> str:
    """The access role's ARN in ``account`` (``{account}`` for the functions' placeholder)."""
    return (
        f"arn:{Aws.PARTITION}:iam::{account}:role{role_path(deployment)}"
        f"{role_name(deployment, ACCESS_ROLE)}"
    )


def access_role_arn_template(deployment: Deployment) -> str:
    """``SES_ACCESS_ROLE_ARN``: the access role's ARN with ``{account}`` for the SES account."""
    return access_role_arn(deployment, ACCOUNT_PLACEHOLDER)


def any_role_arn(deployment: Deployment) -> str:
    """The access role of the deployment in any account (the functions' AssumeRole resource)."""
    return access_role_arn(deployment, "*")


def created_user_name(deployment: Deployment, installation: KionInstallation) -> str:
    """The SMTP user an access stack makes for ``installation`` (fixed: the main stack writes it
    into the installation secret without reading the other account)."""
    return iam_name(deployment.name, installation.name)


def is_cross_account(installation: KionInstallation, stack_account: str) -> bool:
    """True when ``installation``'s SES user lives in another account than the stack's."""
    if installation.ses_account is None:
        return False
    return Token.is_unresolved(stack_account) or installation.ses_account != stack_account


def by_ses_account(
    installations: Sequence[KionInstallation], stack_account: str
) -> dict[str, list[KionInstallation]]:
    """The cross-account installations by their SES account, accounts in order."""
    accounts: dict[str, list[KionInstallation]] = {}
    for installation in installations:
        if is_cross_account(installation, stack_account):
            assert installation.ses_account is not None
            accounts.setdefault(installation.ses_account, []).append(installation)
    return dict(sorted(accounts.items()))


def ses_account_environment(deployment: Deployment) -> dict[str, str]:
    """What the rotation and the watch need to reach an installation in another account: the
    deployment's own account (an installation whose ``ses_account`` differs is cross-account)
    and the access role's ARN with ``{account}`` to fill in."""
    return {
        "DEPLOYMENT_ACCOUNT_ID": Aws.ACCOUNT_ID,
        "SES_ACCESS_ROLE_ARN": access_role_arn_template(deployment),
    }


def grant_assume_access_roles(
    role: iam.IRole, deployment: Deployment, organization_id: str
) -> None:
    """``sts:AssumeRole`` on the deployment's access role in any account of the organisation, as
    the statement ``SesAccountAccess``: one statement for any number of SES accounts."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="SesAccountAccess",
            actions=["sts:AssumeRole"],
            resources=[any_role_arn(deployment)],
            conditions={"StringEquals": {"aws:ResourceOrgID": organization_id}},
        )
    )
