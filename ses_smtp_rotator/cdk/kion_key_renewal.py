"""The function that renews Kion API keys: Secrets Manager's rotation of each Kion API key secret
the stack creates, attached with no rotation rules (the daily watch starts it when a key is due)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.time_budget import WorstCase

from .deployment import Deployment
from .function import asset_function, grant_key_use_through_secrets_manager, powertools_environment

RENEWAL_HANDLER = "ses_smtp_rotator.functions.kion_key_renewal.handler.lambda_handler"
RENEWAL_SECRET_ACTIONS = (
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
)


def renewal_timeout() -> Duration:
    """The renewal function's timeout: its slowest step at its worst, to the whole minute above."""
    slowest = max(WorstCase(RotationConfig()).renewal_steps().values())
    return Duration.minutes(math.ceil(slowest / 60))


class KionKeyRenewalFunction(Construct):
    """The renewal function with its role and log group.

    It reaches the deployment's Kion API key secrets (and reads its installation secrets, which
    name Kion's URL) by name prefix and tag, so its policy keeps its size. Secrets Manager may
    invoke it for those secrets only (``invoke_permission``). Kion API key secrets the
    installations import (``imported_api_key_secret_arns``) get no renewal attached by the stack,
    but the function may renew each once an operator attaches it (``imported_invoke_permission``).
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
        log_level: str,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
        encryption_key: kms.IKey | None = None,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_group: ec2.ISecurityGroup | None = None,
        imported_api_key_secret_arns: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.role, self.log_group, self.function = asset_function(
            self,
            role_description="Renews the Kion App API keys of the SES SMTP rotation",
            description="Secrets Manager rotation of the Kion App API key (create, then delete)",
            handler=RENEWAL_HANDLER,
            code=code,
            runtime=runtime,
            layer=layer,
            timeout=renewal_timeout(),
            memory_size=256,
            tracing=lambda_.Tracing.ACTIVE,
            environment=powertools_environment(log_level, deployment),
            log_retention=log_retention,
            removal_policy=removal_policy,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_group=security_group,
        )
        self.role.add_to_principal_policy(
            deployment.api_key_secrets_statement(stack, actions=[*RENEWAL_SECRET_ACTIONS])
        )
        self.role.add_to_principal_policy(
            deployment.installation_secrets_statement(
                stack, actions=["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
            )
        )
        if imported_api_key_secret_arns:
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=[*RENEWAL_SECRET_ACTIONS],
                    resources=sorted(set(imported_api_key_secret_arns)),
                )
            )
        if encryption_key is not None:
            grant_key_use_through_secrets_manager(self.role, encryption_key)
        self.invoke_permission = lambda_.CfnPermission(
            self,
            "SecretsManagerInvoke",
            action="lambda:InvokeFunction",
            function_name=self.function.function_arn,
            principal="secretsmanager.amazonaws.com",
            source_account=Aws.ACCOUNT_ID,
            source_arn=deployment.api_key_secrets_arn(stack),
        )
        # One statement for every imported secret, whatever their number: the function's
        # resource policy has a size limit, and the role above names each secret anyway.
        self.imported_invoke_permission = (
            lambda_.CfnPermission(
                self,
                "SecretsManagerInvokeForImportedKeys",
                action="lambda:InvokeFunction",
                function_name=self.function.function_arn,
                principal="secretsmanager.amazonaws.com",
                source_account=Aws.ACCOUNT_ID,
            )
            if imported_api_key_secret_arns
            else None
        )


def attach_renewal(
    scope: Construct, api_key_secret: secretsmanager.ISecret, function: lambda_.IFunction
) -> secretsmanager.CfnRotationSchedule:
    """Rotation of ``api_key_secret`` by the renewal function, and nothing more: no rules (the
    watch starts each renewal) and no renewal at deploy."""
    return secretsmanager.CfnRotationSchedule(
        scope,
        "KionApiKeyRenewal",
        secret_id=api_key_secret.secret_arn,
        rotation_lambda_arn=function.function_arn,
        rotate_immediately_on_update=False,
    )
