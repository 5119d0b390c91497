"""Installations spread over nested stacks, so that a deployment of any size keeps every stack
within CloudFormation's limits (500 resources and 200 outputs per template).

An installation's stack follows from its name alone (a hash into ``STACK_COUNT`` buckets): adding,
removing or reordering other installations never moves it, since a move would replace its secrets.
Only buckets that hold an installation become stacks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from aws_cdk import CfnOutput, NestedStack
from constructs import Construct

from .installation import KionInstallation
from .installation_resources import InstallationResources, SharedRotation, add_installation

STACK_COUNT = 16
# Each installation takes at most 7 resources and 3 outputs; 60 keeps a stack below both limits.
MAX_INSTALLATIONS_PER_STACK = 60


def stack_index(installation_name: str) -> int:
    """The bucket of an installation, stable for its (case-insensitive) name."""
    digest = hashlib.sha256(installation_name.lower().encode()).digest()
    return int.from_bytes(digest[:4], "big") % STACK_COUNT


def group_installations(
    installations: Sequence[KionInstallation],
) -> dict[int, list[KionInstallation]]:
    """Installations by bucket; refuses a bucket beyond what one stack can hold."""
    groups: dict[int, list[KionInstallation]] = {}
    for installation in installations:
        groups.setdefault(stack_index(installation.name), []).append(installation)
    for index, members in sorted(groups.items()):
        if len(members) > MAX_INSTALLATIONS_PER_STACK:
            raise ValueError(
                f"{len(members)} installations fall into installation stack {index}, which holds "
                f"at most {MAX_INSTALLATIONS_PER_STACK} ({', '.join(m.name for m in members[:5])}, "
                "...). Fix: rename some of them (the stack follows from the name), or deploy the "
                "rest from a second stack name."
            )
    return groups


class InstallationStack(NestedStack):
    """A nested stack with the resources and outputs of some installations."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        installations: Sequence[KionInstallation],
        shared: SharedRotation,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=(
                "Kion installations of SES SMTP rotation deployment "
                f"{shared.deployment.name}: secrets, SMTP users, rotation and schedules"
            ),
        )
        self.installations: dict[str, InstallationResources] = {}
        for installation in installations:
            resources = add_installation(self, installation, shared)
            self.installations[installation.name] = resources
            self._outputs(resources)

    def _outputs(self, resources: InstallationResources) -> None:
        name = resources.installation.name
        key = output_key(name)
        CfnOutput(
            self,
            f"{key}SecretArn",
            value=resources.secret.secret_arn,
            description=f"Installation secret of {name} (SMTP credential and settings)",
        )
        CfnOutput(
            self,
            f"{key}KionApiKeySecretArn",
            value=resources.api_key_secret.secret_arn,
            description=f"Secret that holds the Kion App API key of {name}",
        )
        CfnOutput(
            self,
            f"{key}SmtpUserName",
            value=resources.smtp_user.user_name,
            description=f"IAM user whose access keys are the SES SMTP credential of {name}",
        )


def output_key(name: str) -> str:
    """``prod-east`` -> ``ProdEast`` (output ids are alphanumeric)."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("-"))
