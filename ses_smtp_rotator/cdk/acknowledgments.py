"""The AWS Solutions (cdk-nag) findings the design accepts, each acknowledged with its reason."""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Acknowledgment, Stack, Token, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from .accounts import ACCESS_ROLE, role_name, role_path
from .deployment import Deployment
from .installation import KionInstallation
from .installation_resources import InstallationResources


def acknowledge(scope: Construct, rule_id: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def acknowledge_function(
    role: iam.IRole, function: lambda_.IFunction, network_policy: iam.Policy | None
) -> None:
    acknowledge(
        role,
        "AwsSolutions-IAM5[Resource::*]",
        "X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no "
        "resource-level permissions, so Lambda's tracing statement needs Resource *. Every "
        "other statement of this role names its secrets, users and key.",
    )
    acknowledge_runtime(function)
    if network_policy is not None:
        acknowledge(
            network_policy,
            "AwsSolutions-IAM5[Resource::*]",
            "VPC attachment: Lambda creates, describes and deletes the function's network "
            "interfaces with these EC2 actions, which it requires on Resource *.",
        )


def acknowledge_runtime(function: lambda_.IFunction) -> None:
    acknowledge(
        function,
        "AwsSolutions-L1",
        "The function runs the Python runtime its code is tested on (3.12 by default, the "
        "suite runs on 3.11 and 3.12). Choose a newer one with the runtime property after "
        "testing the rotation on it; Powertools' layer follows the choice.",
    )


def acknowledge_deployment_wildcards(
    deployment: Deployment, role: iam.IRole, *, api_key_secrets: bool = False, users: bool = False
) -> None:
    """The statements of ``role`` that reach every installation secret of the deployment (and,
    for the rotation function, every API key secret and SMTP user it created) by prefix."""
    stack = Stack.of(role)
    region = _as_reported(stack.region, "<AWS::Region>")
    account = _as_reported(stack.account, "<AWS::AccountId>")
    secrets = f"arn:<AWS::Partition>:secretsmanager:{region}:{account}:secret:"
    patterns = [f"{secrets}{deployment.secret_prefix}*"]
    if api_key_secrets:
        patterns.append(f"{secrets}{deployment.api_key_secret_prefix}*")
    if users:
        patterns.append(f"arn:<AWS::Partition>:iam::{account}:user{deployment.user_path}*")
    for pattern in patterns:
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{pattern}]",
            "One statement for every installation of this deployment, so the policy keeps its "
            "size at any number of installations: it names the deployment's secret name prefix "
            "and requires the deployment tag (secrets), or names the deployment's IAM path "
            "(users). Nothing outside the deployment matches.",
        )


def acknowledge_access_roles(deployment: Deployment, role: iam.IRole) -> None:
    """The one ``sts:AssumeRole`` statement on the deployment's access role in any account."""
    acknowledge(
        role,
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::*:role"
        f"{role_path(deployment)}{role_name(deployment, ACCESS_ROLE)}]",
        "One statement for every SES account of this deployment, so the policy keeps its size "
        "at 500 accounts: it names the deployment's access role by path and name, and the "
        "condition aws:ResourceOrgID holds it to the accounts of the deployment's organisation. "
        "Each access role trusts this role by its exact ARN only.",
    )


def acknowledge_access_stack(
    deployment: Deployment,
    role: iam.IRole,
    users: Iterable[tuple[KionInstallation, iam.User]],
) -> None:
    """The access role's statement on the deployment's IAM path in its account, and the
    SendRawEmail statement of each user the access stack makes."""
    account = _as_reported(Stack.of(role).account, "<AWS::AccountId>")
    acknowledge(
        role,
        f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::{account}:user"
        f"{deployment.user_path}*]",
        "One statement for every SMTP user this deployment makes in this account, so the "
        "policy keeps its size at any number of installations: it names the deployment's IAM "
        "path. Nothing outside the deployment matches.",
    )
    for installation, user in users:
        _acknowledge_send_raw_email(installation, user)


def acknowledge_incident_parameters(role: iam.IRole, prefix: str) -> None:
    """The watch's statement on its open incidents: one parameter per installation."""
    stack = Stack.of(role)
    region = _as_reported(stack.region, "<AWS::Region>")
    account = _as_reported(stack.account, "<AWS::AccountId>")
    acknowledge(
        role,
        f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:{region}:{account}:parameter"
        f"{prefix}*]",
        "One parameter per open incident of this deployment's installations, under the "
        "deployment's own path: the policy keeps its size at any number of installations.",
    )


def _as_reported(value: str, placeholder: str) -> str:
    """How cdk-nag shows a region or account: literal when known, a placeholder otherwise."""
    return placeholder if Token.is_unresolved(value) else value


def acknowledge_installations(installations: Iterable[InstallationResources]) -> None:
    for resources in installations:
        name = resources.installation.name
        acknowledge(
            resources.secret,
            "AwsSolutions-SMG4",
            f"Rotation of {name} is attached to the rotation function; its schedule is the "
            "EventBridge Scheduler schedule that calls RotateSecret, so scheduled and "
            "on-demand rotations take one path. A native rotation rule would be a second, "
            "competing schedule.",
        )
        if resources.creates_api_key_secret:
            acknowledge(
                resources.api_key_secret,
                "AwsSolutions-SMG4",
                f"Kion's App API key for {name} is issued, expired and replaced in Kion "
                "(its app_api_key_lifespan setting); the operator stores each new key here. "
                "Secrets Manager cannot create Kion API keys, so there is nothing to rotate.",
            )
        if resources.creates_user:
            _acknowledge_send_raw_email(resources.installation, resources.smtp_user)


def _acknowledge_send_raw_email(installation: KionInstallation, user: iam.IUser) -> None:
    ses_arn = f"arn:<AWS::Partition>:ses:{installation.ses_region}:<AWS::AccountId>"
    for resource in ("identity/*", "configuration-set/*"):
        acknowledge(
            user,
            f"AwsSolutions-IAM5[Resource::{ses_arn}:{resource}]",
            f"The SES SMTP user of {installation.name} may only call ses:SendRawEmail, through "
            "the verified identities (and their configuration sets) of its SES region in this "
            "account: the stack does not know which identity Kion sends from. Set fromAddress "
            "to limit the sender as well.",
        )
