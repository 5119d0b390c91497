"""What marks a resource as part of one deployment, so that policies of a constant size reach
exactly this deployment's secrets and users, however many installations it has.

- Installation secrets are named ``ses-smtp-rotator/<deployment>/smtp/<installation>`` and Kion API
  key secrets ``ses-smtp-rotator/<deployment>/kion-api-key/<installation>``; both carry the tag
  ``ses-smtp-rotator:deployment = <deployment>``. Policies name the prefix *and* require the tag,
  so neither a look-alike name nor a copied tag alone lets a policy reach a foreign secret.
- SMTP users the stack creates live under the IAM path ``/ses-smtp-rotator/<deployment>/``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam

from ses_smtp_rotator.functions.retired_keys import END_WINDOW_TAG, RETIRED_TAG_PREFIX

PRODUCT = "ses-smtp-rotator"
DEPLOYMENT_TAG = f"{PRODUCT}:deployment"
INSTALLATION_TAG = f"{PRODUCT}:installation"
DEPLOYMENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,99}$")
RETIREMENT_TAG_KEYS = (f"{RETIRED_TAG_PREFIX}*", END_WINDOW_TAG)
"""The tags the rotation function, the watch and ``rotate --end-rollback-window`` write."""


@dataclass(frozen=True)
class Deployment:
    """The names, tag and path shared by every resource of one deployment."""

    name: str

    def __post_init__(self) -> None:
        if not DEPLOYMENT_NAME.match(self.name):
            raise ValueError(
                f"Deployment name {self.name!r} names secrets and an IAM path. Fix: use 1-100 "
                "letters, digits and hyphens starting with a letter (the stack name by default)."
            )

    @property
    def secret_prefix(self) -> str:
        return f"{PRODUCT}/{self.name}/smtp/"

    @property
    def api_key_secret_prefix(self) -> str:
        return f"{PRODUCT}/{self.name}/kion-api-key/"

    @property
    def user_path(self) -> str:
        return f"/{PRODUCT}/{self.name}/"

    def secret_name(self, installation: str) -> str:
        return f"{self.secret_prefix}{installation}"

    def api_key_secret_name(self, installation: str) -> str:
        return f"{self.api_key_secret_prefix}{installation}"

    def secrets_arn_prefix(self, stack: Stack) -> str:
        """``arn:<partition>:secretsmanager:<region>:<account>:secret:<secret prefix>``."""
        return (
            f"arn:{Aws.PARTITION}:secretsmanager:{stack.region}:{stack.account}:secret:"
            f"{self.secret_prefix}"
        )

    def installation_secrets_arn(self, stack: Stack) -> str:
        """Matches the ARN of every installation secret of this deployment."""
        return f"{self.secrets_arn_prefix(stack)}*"

    def api_key_secrets_arn(self, stack: Stack) -> str:
        """Matches the ARN of every Kion API key secret this deployment created."""
        return (
            f"arn:{Aws.PARTITION}:secretsmanager:{stack.region}:{stack.account}:secret:"
            f"{self.api_key_secret_prefix}*"
        )

    def users_arn(self, stack: Stack) -> str:
        """Matches the ARN of every SMTP user this deployment created."""
        return f"arn:{Aws.PARTITION}:iam::{stack.account}:user{self.user_path}*"

    def tag_condition(self, service: str = "secretsmanager") -> dict[str, dict[str, str]]:
        """The condition that a resource carries this deployment's tag."""
        return {"StringEquals": {f"{service}:ResourceTag/{DEPLOYMENT_TAG}": self.name}}

    def installation_secrets_statement(
        self, stack: Stack, *, actions: Sequence[str]
    ) -> iam.PolicyStatement:
        """``actions`` on this deployment's installation secrets (prefix and tag), as the
        statement ``InstallationSecrets``."""
        return iam.PolicyStatement(
            sid="InstallationSecrets",
            actions=list(actions),
            resources=[self.installation_secrets_arn(stack)],
            conditions=self.tag_condition(),
        )

    def retirement_tags_statement(self, stack: Stack) -> iam.PolicyStatement:
        """Tagging this deployment's installation secrets with retired-key records only (never
        the deployment tag, which scopes every other grant), as ``RetiredKeyRecords``."""
        return iam.PolicyStatement(
            sid="RetiredKeyRecords",
            actions=["secretsmanager:TagResource", "secretsmanager:UntagResource"],
            resources=[self.installation_secrets_arn(stack)],
            conditions={
                **self.tag_condition(),
                "ForAllValues:StringLike": {"aws:TagKeys": list(RETIREMENT_TAG_KEYS)},
                "Null": {"aws:TagKeys": "false"},  # ForAllValues holds for no keys at all
            },
        )

    def end_rollback_window_statement(self, stack: Stack) -> iam.PolicyStatement:
        """The one tag ``rotate --end-rollback-window`` writes on an installation secret, as
        ``EndRollbackWindow``."""
        return iam.PolicyStatement(
            sid="EndRollbackWindow",
            actions=["secretsmanager:TagResource"],
            resources=[self.installation_secrets_arn(stack)],
            conditions={
                **self.tag_condition(),
                "ForAllValues:StringEquals": {"aws:TagKeys": [END_WINDOW_TAG]},
                "Null": {"aws:TagKeys": "false"},
            },
        )

    def api_key_secrets_statement(
        self, stack: Stack, *, actions: Sequence[str]
    ) -> iam.PolicyStatement:
        """``actions`` on this deployment's Kion API key secrets (prefix and tag), as the
        statement ``KionApiKeySecrets``."""
        return iam.PolicyStatement(
            sid="KionApiKeySecrets",
            actions=list(actions),
            resources=[self.api_key_secrets_arn(stack)],
            conditions=self.tag_condition(),
        )
