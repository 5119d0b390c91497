"""The rotation function with its role, log group and Powertools layer, and the small function that
writes installation settings into secrets during deploys. Both serve every installation.
``asset_function`` builds these and the deployment's other functions alike."""

from __future__ import annotations

import math
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import NamedTuple

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.regions import write_region_data
from ses_smtp_rotator.functions.smtp_rotation.notices import (
    EVENT_BUS_VARIABLE,
    EVENT_SOURCE,
    NOTICE_TOPIC_VARIABLE,
)
from ses_smtp_rotator.functions.time_budget import WorstCase

from . import powertools
from .deployment import Deployment

PACKAGE_DIR = Path(__file__).resolve().parent.parent
FUNCTIONS_PACKAGE = "functions"
LAMBDA_HANDLER = "ses_smtp_rotator.functions.smtp_rotation.handler.lambda_handler"
SETTINGS_HANDLER = "ses_smtp_rotator.functions.installation_settings.handler.lambda_handler"
ASSET_IGNORED = ("__pycache__", "*.pyc", ".pytest_cache")

SERVICE_NAME = "ses-smtp-rotator"
METRICS_NAMESPACE = "SesSmtpRotator"
# The dimension every metric of a deployment carries (its value: the deployment's name), so two
# stacks in one account and region keep their metrics and alarms apart.
DEPLOYMENT_DIMENSION = "deployment"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# How long setSecret waits for SES to accept a new key, and the function timeout above the
# slowest step's worst case (required_timeout).
DEFAULT_SES_ACCEPT_TIMEOUT = Duration.seconds(120)
DEFAULT_TIMEOUT = Duration.minutes(15)
DEFAULT_PREVIOUS_KEY_GRACE = Duration.days(7)
ROTATION_KEY_ACTIONS = [
    "iam:ListAccessKeys",
    "iam:CreateAccessKey",
    "iam:UpdateAccessKey",
    "iam:GetAccessKeyLastUsed",
    "iam:DeleteAccessKey",
]


def grace_environment(previous_key_grace: Duration) -> dict[str, str]:
    """The rollback window, for the rotation function and the watch alike."""
    return {"PREVIOUS_KEY_GRACE_DAYS": str(int(previous_key_grace.to_days()))}


ARCHITECTURE = lambda_.Architecture.ARM_64


def required_timeout(ses_accept_seconds: float) -> tuple[str, int]:
    """The slowest rotation step and its worst case in whole seconds, with this SES wait and the
    function's other timeouts and retries (functions/time_budget.py)."""
    step, seconds = WorstCase(RotationConfig(ses_accept_timeout=ses_accept_seconds)).slowest_step()
    return step, math.ceil(seconds)


def powertools_environment(log_level: str, deployment: Deployment) -> dict[str, str]:
    """Powertools' service, metrics namespace and log level, and the deployment every metric
    names (``DEPLOYMENT_NAME``), as the functions that rotate and watch share them."""
    return {
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": log_level,
        "DEPLOYMENT_NAME": deployment.name,
    }


def metric_dimensions(deployment: Deployment) -> dict[str, str]:
    """The dimensions of a deployment-wide metric the functions publish."""
    return {"service": SERVICE_NAME, DEPLOYMENT_DIMENSION: deployment.name}


@cache
def asset_dir() -> Path:
    """The functions' asset, staged once per process: ``ses_smtp_rotator/functions/`` under an empty
    package ``__init__``, so the Lambda imports the same module names as the library, from the
    installed package or a checkout alike (no Docker, no bundling)."""
    staging = Path(tempfile.mkdtemp(prefix="ses-smtp-rotator-asset-"))
    package = staging / PACKAGE_DIR.name
    shutil.copytree(
        PACKAGE_DIR / FUNCTIONS_PACKAGE,
        package / FUNCTIONS_PACKAGE,
        ignore=shutil.ignore_patterns(*ASSET_IGNORED),
    )
    (package / "__init__.py").write_text("")
    # The region data synth validated with, so the function never refuses a region it accepted.
    write_region_data(package / FUNCTIONS_PACKAGE)
    return staging


def asset_code() -> lambda_.Code:
    """The functions' code as a plain zip, no dependencies (boto3 and urllib3 come with the runtime,
    Powertools with its layer)."""
    return lambda_.Code.from_asset(str(asset_dir()))


def powertools_layer(
    scope: Construct, *, runtime: lambda_.Runtime, layer_arn: str | None
) -> lambda_.ILayerVersion:
    return lambda_.LayerVersion.from_layer_version_arn(
        scope,
        "PowertoolsLayer",
        layer_arn or powertools.layer_arn(scope, runtime=runtime, architecture=ARCHITECTURE),
    )


class AssetFunction(NamedTuple):
    """A function built by ``asset_function`` with its own role and log group."""

    role: iam.Role
    log_group: logs.LogGroup
    function: lambda_.Function


def asset_function(
    scope: Construct,
    *,
    role_description: str,
    description: str,
    handler: str,
    code: lambda_.Code,
    runtime: lambda_.Runtime,
    layer: lambda_.ILayerVersion,
    timeout: Duration,
    memory_size: int,
    environment: dict[str, str],
    log_retention: logs.RetentionDays,
    removal_policy: RemovalPolicy,
    tracing: lambda_.Tracing | None = None,
    vpc: ec2.IVpc | None = None,
    vpc_subnets: ec2.SubnetSelection | None = None,
    security_group: ec2.ISecurityGroup | None = None,
    role_name: str | None = None,
    role_path: str | None = None,
) -> AssetFunction:
    """One of the project's functions in ``scope`` (as ``Role``, ``Logs`` and ``Function``):
    ``code`` on the Powertools layer, a role of its own that writes JSON logs to a log group of its
    own, in the VPC when ``vpc`` is given. The caller grants what ``handler`` needs. ``role_name``
    and ``role_path`` fix the role's ARN (for a trust in another account); CloudFormation
    names it otherwise."""
    role = iam.Role(
        scope,
        "Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=role_description,
        role_name=role_name,
        path=role_path,
    )
    log_group = logs.LogGroup(scope, "Logs", retention=log_retention, removal_policy=removal_policy)
    function = lambda_.Function(
        scope,
        "Function",
        description=description,
        runtime=runtime,
        architecture=ARCHITECTURE,
        handler=handler,
        code=code,
        layers=[layer],
        role=role,
        timeout=timeout,
        memory_size=memory_size,
        tracing=tracing,
        log_group=log_group,
        logging_format=lambda_.LoggingFormat.JSON,
        environment=environment,
        vpc=vpc,
        vpc_subnets=vpc_subnets,
        security_groups=[security_group] if security_group else None,
    )
    log_group.grant_write(role)
    cfn_function = function.node.default_child
    assert isinstance(cfn_function, lambda_.CfnFunction)
    # CDK makes a function depend on everything under its role: the default policy (needed,
    # the permissions must exist before the first invocation) and the role itself (which the
    # Role property's GetAtt already orders). cfn-lint reports the second as W3005.
    cfn_function.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
    return AssetFunction(role=role, log_group=log_group, function=function)


class RotationFunction(Construct):
    """The Lambda function Secrets Manager invokes for every step of every installation's rotation.

    Its permissions reach this deployment's installation secrets, its Kion API key secrets and its
    SMTP users by name prefix, tag and IAM path (``grant_deployment_access``), plus whatever was
    imported by ARN (``grant_imported``), so the policy does not grow with the installations.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment: Deployment,
        code: lambda_.Code,
        runtime: lambda_.Runtime,
        layer: lambda_.ILayerVersion,
        ses_accept_timeout: Duration,
        timeout: Duration,
        previous_key_grace: Duration = DEFAULT_PREVIOUS_KEY_GRACE,
        memory_size: int,
        log_level: str,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_group: ec2.ISecurityGroup | None = None,
        role_name: str | None = None,
        role_path: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role, self.log_group, self.function = asset_function(
            self,
            role_name=role_name,
            role_path=role_path,
            role_description="Rotates the SES SMTP credential of the Kion installations",
            description="Secrets Manager rotation of the SES SMTP credential Kion uses",
            handler=LAMBDA_HANDLER,
            code=code,
            runtime=runtime,
            layer=layer,
            timeout=timeout,
            memory_size=memory_size,
            tracing=lambda_.Tracing.ACTIVE,
            environment={
                **powertools_environment(log_level, deployment),
                "SES_ACCEPT_TIMEOUT_SECONDS": str(int(ses_accept_timeout.to_seconds())),
                "FUNCTION_TIMEOUT_SECONDS": str(int(timeout.to_seconds())),
                **grace_environment(previous_key_grace),
            },
            log_retention=log_retention,
            removal_policy=removal_policy,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_group=security_group,
        )

    def grant_deployment_access(self, deployment: Deployment) -> None:
        """Rotation of this deployment's secrets and users, whatever their number."""
        stack = Stack.of(self)
        self.role.add_to_principal_policy(
            deployment.installation_secrets_statement(
                stack,
                actions=[
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:PutSecretValue",
                    "secretsmanager:UpdateSecretVersionStage",
                    "secretsmanager:ListSecretVersionIds",
                ],
            )
        )
        self.role.add_to_principal_policy(deployment.retirement_tags_statement(stack))
        self.role.add_to_principal_policy(
            deployment.api_key_secrets_statement(stack, actions=["secretsmanager:GetSecretValue"])
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="SmtpUserKeys",
                actions=ROTATION_KEY_ACTIONS,
                resources=[deployment.users_arn(stack)],
            )
        )

    def announce_to(self, topic: sns.ITopic) -> None:
        """Notices to ``topic`` (``functions/smtp_rotation/notices.py``), and the product's
        events to the account's default event bus, with the product's ``source`` only."""
        stack = Stack.of(self)
        topic.grant_publish(self.role)
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ProductEvents",
                actions=["events:PutEvents"],
                resources=[
                    f"arn:{stack.partition}:events:{stack.region}:{stack.account}:event-bus/default"
                ],
                conditions={"StringEquals": {"events:source": EVENT_SOURCE}},
            )
        )
        self.function.add_environment(NOTICE_TOPIC_VARIABLE, topic.topic_arn)
        self.function.add_environment(EVENT_BUS_VARIABLE, "default")

    def grant_imported(self, *, api_key_secret_arns: list[str], user_arns: list[str]) -> None:
        """Existing API key secrets and users named by ARN in the settings, one ARN each."""
        if api_key_secret_arns:
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="ImportedKionApiKeySecrets",
                    actions=["secretsmanager:GetSecretValue"],
                    resources=sorted(set(api_key_secret_arns)),
                )
            )
        if user_arns:
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="ImportedSmtpUserKeys",
                    actions=ROTATION_KEY_ACTIONS,
                    resources=sorted(set(user_arns)),
                )
            )

    def grant_key_use(self, key: kms.IKey) -> None:
        grant_key_use_through_secrets_manager(self.role, key)

    def grant_network_interfaces(self) -> iam.Policy:
        policy = iam.Policy(
            self,
            "NetworkInterfacePolicy",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    actions=[
                        "ec2:CreateNetworkInterface",
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:DescribeSubnets",
                        "ec2:DeleteNetworkInterface",
                        "ec2:AssignPrivateIpAddresses",
                        "ec2:UnassignPrivateIpAddresses",
                    ],
                    resources=["*"],
                )
            ],
        )
        # Lambda checks these permissions when it creates the function in the VPC.
        self.function.node.add_dependency(policy)
        return policy


class SettingsWriter(Construct):
    """The function behind each installation's ``InstallationSettings`` custom resource: it merges
    the settings from the template into the secret's AWSCURRENT value and keeps the credential."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment: Deployment,
        code: lambda_.Code,
        runtime: lambda_.Runtime,
        layer: lambda_.ILayerVersion,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
        encryption_key: kms.IKey | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role, self.log_group, self.function = asset_function(
            self,
            role_description="Writes Kion installation settings into their secrets during deploys",
            description="Writes an installation's settings into its secret, keeping the credential",
            handler=SETTINGS_HANDLER,
            code=code,
            runtime=runtime,
            layer=layer,
            timeout=Duration.seconds(60),
            memory_size=128,
            environment={"POWERTOOLS_SERVICE_NAME": f"{SERVICE_NAME}-settings"},
            log_retention=log_retention,
            removal_policy=removal_policy,
        )
        self.role.add_to_principal_policy(
            deployment.installation_secrets_statement(
                Stack.of(self),
                actions=[
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:PutSecretValue",
                    "secretsmanager:UpdateSecretVersionStage",
                ],
            )
        )
        if encryption_key is not None:
            grant_key_use_through_secrets_manager(self.role, encryption_key)


def grant_key_use_through_secrets_manager(role: iam.IRole, key: kms.IKey) -> None:
    stack = Stack.of(role)
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
            resources=[key.key_arn],
            conditions={
                "StringEquals": {
                    "kms:ViaService": f"secretsmanager.{stack.region}.{stack.url_suffix}"
                }
            },
        )
    )
