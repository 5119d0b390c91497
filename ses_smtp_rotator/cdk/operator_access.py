"""The operator policy: exactly what the ``ses-smtp-rotator`` commands need for this deployment,
and nothing that reads a Kion API key.

- ``list``: find the installations (``secretsmanager:ListSecrets``, which has no resource level).
- ``status``: read the installation secrets, their versions and the SMTP user's keys, the rotation
  function's configuration and log group, the rotation schedules; ask the watch function for
  Kion's side (``lambda:InvokeFunction``), so the Kion API key stays out of the operator's reach.
- ``rotate``: ``RotateSecret`` on the installation secrets (which invokes the rotation function as
  its caller), and the function's log group to follow the steps.
- ``set-kion-key``: store a new key in the Kion API key secrets (write, never read), cancelling a
  renewal in progress.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from . import acknowledgments
from .deployment import Deployment


class OperatorPolicy(Construct):
    """``policy``: a managed policy to attach to the people (or their role) who operate the
    deployment with the command line."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment: Deployment,
        rotation_function: lambda_.IFunction,
        rotation_log_group: logs.ILogGroup,
        watch_function: lambda_.IFunction,
        schedule_group: scheduler.IScheduleGroup,
        imported_api_key_secret_arns: Sequence[str] = (),
        imported_user_arns: Sequence[str] = (),
        encryption_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.schedules_arn = (
            f"arn:{Aws.PARTITION}:scheduler:{stack.region}:{stack.account}:schedule/"
            f"{schedule_group.schedule_group_name}/*"
        )
        statements = [
            iam.PolicyStatement(
                sid="ListInstallations",
                actions=["secretsmanager:ListSecrets", "scheduler:ListSchedules"],
                resources=["*"],
            ),
            deployment.installation_secrets_statement(
                stack,
                actions=[
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:ListSecretVersionIds",
                    "secretsmanager:RotateSecret",
                ],
            ),
            iam.PolicyStatement(
                sid="StoreKionApiKeys",
                actions=[
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:ListSecretVersionIds",
                    "secretsmanager:PutSecretValue",
                    "secretsmanager:UpdateSecretVersionStage",
                ],
                resources=[deployment.api_key_secrets_arn(stack), *imported_api_key_secret_arns],
            ),
            iam.PolicyStatement(
                sid="RotationAndWatchFunctions",
                actions=["lambda:InvokeFunction"],
                resources=[rotation_function.function_arn, watch_function.function_arn],
            ),
            iam.PolicyStatement(
                sid="RotationFunctionConfiguration",
                actions=["lambda:GetFunctionConfiguration"],
                resources=[rotation_function.function_arn],
            ),
            iam.PolicyStatement(
                sid="RotationLogs",
                actions=["logs:FilterLogEvents"],
                resources=[rotation_log_group.log_group_arn],
            ),
            iam.PolicyStatement(
                sid="RotationSchedules",
                actions=["scheduler:GetSchedule"],
                resources=[self.schedules_arn],
            ),
            iam.PolicyStatement(
                sid="SmtpUserKeys",
                actions=["iam:ListAccessKeys"],
                resources=[deployment.users_arn(stack), *sorted(set(imported_user_arns))],
            ),
            iam.PolicyStatement(
                sid="CheckSmtpUsers",
                actions=["iam:GetUser", "iam:GetAccessKeyLastUsed", "iam:SimulatePrincipalPolicy"],
                resources=[deployment.users_arn(stack), *sorted(set(imported_user_arns))],
            ),
            iam.PolicyStatement(
                sid="CheckSesSending",
                actions=["ses:GetAccount", "ses:GetEmailIdentity"],
                resources=["*"],
            ),
        ]
        if encryption_key is not None:
            statements.append(
                iam.PolicyStatement(
                    sid="SecretsKey",
                    actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                    resources=[encryption_key.key_arn],
                    conditions={
                        "StringEquals": {
                            "kms:ViaService": f"secretsmanager.{stack.region}.{stack.url_suffix}"
                        }
                    },
                )
            )
        self.schedule_group_name = schedule_group.schedule_group_name
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description=(
                f"Operates SES SMTP rotation deployment {deployment.name} with ses-smtp-rotator "
                "(list, status, rotate, set-kion-key); never reads a Kion API key"
            ),
            statements=statements,
        )


def acknowledge_operator_policy(deployment: Deployment, operators: OperatorPolicy) -> None:
    policy = operators.policy
    stack = Stack.of(policy)
    group = stack.resolve(operators.schedule_group_name)
    group = group if isinstance(group, str) else f"<{group.get('Ref')}>"
    region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
    account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
    acknowledgments.acknowledge(
        policy,
        f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:{region}:{account}:"
        f"schedule/{group}/*]",
        "GetSchedule on the schedules of this deployment's schedule group only: `status` "
        "reads the schedule of an installation to show its next rotation.",
    )
    acknowledgments.acknowledge_deployment_wildcards(
        deployment, policy, api_key_secrets=True, users=True
    )
    acknowledgments.acknowledge(
        policy,
        "AwsSolutions-IAM5[Resource::*]",
        "secretsmanager:ListSecrets, scheduler:ListSchedules and ses:GetAccount have no "
        "resource-level permissions; `list` and `status` need the first two to find "
        "installations and schedules, `check` the third for SES's sandbox and pause. "
        "ses:GetEmailIdentity (read only) looks up whichever identity Kion sends from, in the "
        "SES region of Kion's host.",
    )
