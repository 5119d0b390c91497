"""``SesSmtpRotation``: rotates the Amazon SES SMTP credential of one or more Kion installations.

One rotation function serves every installation. Per installation the construct creates the
installation secret (settings filled in, credential empty until the first rotation), the Kion API
key secret (or imports an existing one), the SES SMTP IAM user (or imports an existing one), the
rotation configuration on the secret (with no native schedule), and an EventBridge Scheduler
schedule that calls Secrets Manager ``RotateSecret``, so a scheduled rotation and a console one take
the same path. Failed and abandoned rotations, function errors and failed schedule invocations are
alerted to an SNS topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jsii
from aws_cdk import (
    Acknowledgment,
    Aws,
    Duration,
    RemovalPolicy,
    SecretValue,
    Stack,
    Tags,
    TimeZone,
    Validations,
)
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from . import powertools
from .installation import KionInstallation, RotationSchedule

LAMBDA_ASSET_DIR = Path(__file__).resolve().parent.parent / "lambdas"
LAMBDA_HANDLER = "smtp_rotation.handler.lambda_handler"
ASSET_EXCLUDES = ["**/__pycache__", "**/__pycache__/**", "**/*.pyc", "**/.pytest_cache"]

SERVICE_NAME = "ses-smtp-rotator"
METRICS_NAMESPACE = "SesSmtpRotator"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# The rotation events Secrets Manager reports through CloudTrail that need a person's attention.
ALERTED_ROTATION_EVENTS = ("RotationFailed", "RotationAbandoned")
# How long setSecret waits for SES to accept a new key, and the function timeout above it.
DEFAULT_SES_ACCEPT_TIMEOUT = Duration.seconds(120)
DEFAULT_TIMEOUT = Duration.minutes(5)
TIMEOUT_HEADROOM = Duration.seconds(60)


@dataclass(frozen=True)
class InstallationResources:
    """What the construct made (or imported) for one installation."""

    installation: KionInstallation
    secret: secretsmanager.ISecret
    api_key_secret: secretsmanager.ISecret
    smtp_user: iam.IUser
    rotation: secretsmanager.CfnRotationSchedule
    schedule: scheduler.Schedule


class SesSmtpRotation(Construct):
    """Rotates the SES SMTP credential of one or more Kion installations.

    Attributes: ``function`` (the rotation function) with its ``role`` and ``log_group``;
    ``installations`` (name -> InstallationResources: secret, API key secret, SMTP user, rotation,
    schedule); ``secrets`` (the installation secrets); ``topic`` (the alert topic);
    ``schedule_group`` and ``scheduler_role``; ``security_group`` (None outside a VPC).
    ``grant_rotate(grantee)`` lets a person or role start a rotation on demand.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        installations: Sequence[KionInstallation],
        schedule: RotationSchedule | None = None,
        alarm_email: str | None = None,
        alarm_topic: sns.ITopic | None = None,
        encryption_key: kms.IKey | None = None,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        https_egress_cidrs: Sequence[str] = ("0.0.0.0/0",),
        smtp_egress_cidrs: Sequence[str] = ("0.0.0.0/0",),
        create_ses_smtp_endpoint: bool = False,
        create_secrets_manager_endpoint: bool = False,
        code: lambda_.Code | None = None,
        runtime: lambda_.Runtime = lambda_.Runtime.PYTHON_3_12,
        powertools_layer_version: int = powertools.POWERTOOLS_LAYER_VERSION,
        powertools_layer_arn: str | None = None,
        ses_accept_timeout: Duration = DEFAULT_SES_ACCEPT_TIMEOUT,
        timeout: Duration = DEFAULT_TIMEOUT,
        memory_size: int = 256,
        log_level: str = "INFO",
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
        schedule = schedule or RotationSchedule()
        _check_installations(installations)
        if log_level not in LOG_LEVELS:
            raise ValueError(f"log_level {log_level!r} must be one of {', '.join(LOG_LEVELS)}.")
        if timeout.to_seconds() < ses_accept_timeout.to_seconds() + TIMEOUT_HEADROOM.to_seconds():
            raise ValueError(
                f"The function timeout ({timeout.to_seconds()} s) must exceed the SES wait "
                f"({ses_accept_timeout.to_seconds()} s) by at least "
                f"{TIMEOUT_HEADROOM.to_seconds()} s, or setSecret times out while it waits."
            )
        if vpc is None and (create_ses_smtp_endpoint or create_secrets_manager_endpoint):
            raise ValueError("VPC endpoints need a VPC: set vpc (and vpc_subnets).")

        self._stack = Stack.of(self)
        self._encryption_key = encryption_key
        self._removal_policy = removal_policy
        self._installation_specs = list(installations)

        self.topic: sns.ITopic = alarm_topic or self._create_topic()
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))

        self.security_group: ec2.SecurityGroup | None = None
        if vpc is not None:
            self.security_group = self._create_network(
                vpc,
                vpc_subnets,
                https_egress_cidrs=https_egress_cidrs,
                smtp_egress_cidrs=smtp_egress_cidrs,
                create_ses_smtp_endpoint=create_ses_smtp_endpoint,
                create_secrets_manager_endpoint=create_secrets_manager_endpoint,
            )

        self.role = iam.Role(
            self,
            "FunctionRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Rotates the SES SMTP credential of the Kion installations",
        )
        self.log_group = logs.LogGroup(
            self, "FunctionLogs", retention=log_retention, removal_policy=removal_policy
        )
        architecture = lambda_.Architecture.ARM_64
        layer = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "PowertoolsLayer",
            powertools_layer_arn
            or powertools.layer_arn(
                self,
                runtime=runtime,
                architecture=architecture,
                version=powertools_layer_version,
            ),
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description="Secrets Manager rotation of the SES SMTP credential Kion uses",
            runtime=runtime,
            architecture=architecture,
            handler=LAMBDA_HANDLER,
            code=code or lambda_.Code.from_asset(str(LAMBDA_ASSET_DIR), exclude=ASSET_EXCLUDES),
            layers=[layer],
            role=self.role,
            timeout=timeout,
            memory_size=memory_size,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            environment={
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": log_level,
                "SES_ACCEPT_TIMEOUT_SECONDS": str(int(ses_accept_timeout.to_seconds())),
            },
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=[self.security_group] if self.security_group else None,
        )
        self.log_group.grant_write(self.role)
        cfn_function = self.function.node.default_child
        assert isinstance(cfn_function, lambda_.CfnFunction)
        # CDK makes a function depend on everything under its role: the default policy (needed,
        # the permissions must exist before the first invocation) and the role itself (which the
        # Role property's GetAtt already orders). cfn-lint reports the second as W3005.
        cfn_function.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
        self._network_policy = self._grant_network_interfaces() if vpc is not None else None
        if encryption_key is not None:
            self._grant_key_use(encryption_key)

        self.schedule_group = scheduler.ScheduleGroup(self, "Schedules")
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={
                    "StringEquals": {
                        "aws:SourceAccount": Aws.ACCOUNT_ID,
                        "aws:SourceArn": self.schedule_group.schedule_group_arn,
                    }
                },
            ),
            description="Lets EventBridge Scheduler start rotations of the Kion SMTP secrets",
        )

        self.installations: dict[str, InstallationResources] = {}
        for installation in self._installation_specs:
            self.installations[installation.name] = self._add_installation(installation, schedule)
        self.secrets: list[secretsmanager.ISecret] = [
            resources.secret for resources in self.installations.values()
        ]

        self._add_alerts()
        self._acknowledge_findings()

    # -- public helpers ---------------------------------------------------------------------------

    def grant_rotate(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` start a rotation of any installation secret on demand
        (``RotateSecret`` needs ``lambda:InvokeFunction`` on the rotation function too)."""
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["secretsmanager:RotateSecret"],
            resource_arns=[secret.secret_arn for secret in self.secrets],
        )
        self.function.grant_invoke(grantee)
        return grant

    # -- per installation -------------------------------------------------------------------------

    def _add_installation(
        self, installation: KionInstallation, schedule: RotationSchedule
    ) -> InstallationResources:
        scope = Construct(self, f"Installation-{installation.name}")
        Tags.of(scope).add("ses-smtp-rotator:installation", installation.name)

        if installation.kion_api_key_secret_arn:
            api_key_secret = secretsmanager.Secret.from_secret_complete_arn(
                scope, "KionApiKey", installation.kion_api_key_secret_arn
            )
        else:
            api_key_secret = secretsmanager.Secret(
                scope,
                "KionApiKey",
                description=(
                    f"Kion App API key the SES SMTP rotation uses for {installation.name} "
                    "(put the key in after the first deploy)"
                ),
                # Empty until the operator stores the key; CloudFormation never changes it again.
                secret_string_value=SecretValue.unsafe_plain_text('{"api_key": ""}'),
                encryption_key=self._encryption_key,
                removal_policy=self._removal_policy,
            )

        if installation.iam_user_name:
            user_name = installation.iam_user_name
            smtp_user = iam.User.from_user_attributes(
                scope,
                "SmtpUser",
                user_arn=self._stack.format_arn(
                    service="iam",
                    region="",
                    resource="user",
                    resource_name=f"{installation.iam_user_path.lstrip('/')}{user_name}",
                ),
            )
        else:
            created_user = iam.User(scope, "SmtpUser", path="/ses-smtp-rotator/")
            # Always kept: Kion keeps sending with the user's key after the stack is gone, and
            # CloudFormation cannot delete a user that has access keys it did not create.
            created_user.apply_removal_policy(RemovalPolicy.RETAIN)
            created_user.add_to_principal_policy(self._send_raw_email_statement(installation))
            smtp_user = created_user
            user_name = created_user.user_name

        settings = {
            "username": "",
            "password": "",
            "ses_region": installation.ses_region,
            "iam_user_name": user_name,
            "kion_url": installation.kion_url,
            "kion_api_key_secret_id": api_key_secret.secret_arn,
            "smtp_host": installation.resolved_smtp_host,
            "smtp_port": installation.smtp_port,
        }
        if installation.kion_ca_bundle:
            settings["kion_ca_bundle"] = installation.kion_ca_bundle
        secret = secretsmanager.Secret(
            scope,
            "SmtpCredential",
            description=(
                f"SES SMTP credential Kion uses for {installation.name}, with the settings its "
                "rotation needs (the credential is filled in by the first rotation)"
            ),
            # Settings only: username and password stay empty until the first rotation adopts
            # the key Kion runs on. No secret value ever passes through the template.
            secret_string_value=SecretValue.unsafe_plain_text(self._stack.to_json_string(settings)),
            encryption_key=self._encryption_key,
            removal_policy=self._removal_policy,
        )

        self._grant_rotation_access(secret, api_key_secret, smtp_user)
        permission = lambda_.CfnPermission(
            scope,
            "SecretsManagerInvoke",
            action="lambda:InvokeFunction",
            function_name=self.function.function_arn,
            principal="secretsmanager.amazonaws.com",
            source_account=Aws.ACCOUNT_ID,
            source_arn=secret.secret_arn,
        )
        # Rotation attached to the function, and nothing more: no RotationRules (the one schedule
        # is the Scheduler's below) and no rotation when the stack is deployed or updated.
        rotation = secretsmanager.CfnRotationSchedule(
            scope,
            "Rotation",
            secret_id=secret.secret_arn,
            rotation_lambda_arn=self.function.function_arn,
            rotate_immediately_on_update=False,
        )
        # Secrets Manager checks it may invoke the function, and the function needs its
        # permissions, before the rotation configuration is accepted.
        rotation.node.add_dependency(permission, self.role)

        rotation_target = scheduler_targets.Universal(
            service="secretsmanager",
            action="rotateSecret",
            input=scheduler.ScheduleTargetInput.from_object({"SecretId": secret.secret_arn}),
            role=self.scheduler_role,
            policy_statements=[
                iam.PolicyStatement(
                    actions=["secretsmanager:RotateSecret"], resources=[secret.secret_arn]
                ),
                iam.PolicyStatement(
                    actions=["lambda:InvokeFunction"], resources=[self.function.function_arn]
                ),
            ],
            # A retried RotateSecret could start a second rotation behind a slow first one;
            # a missed run is alerted instead (scheduler target errors) and run again on demand.
            retry_attempts=0,
            max_event_age=Duration.hours(1),
        )
        window = schedule.flexible_window
        rotation_schedule = scheduler.Schedule(
            scope,
            "Schedule",
            description=f"Rotates the SES SMTP credential of Kion installation {installation.name}",
            schedule=scheduler.ScheduleExpression.expression(
                schedule.expression, TimeZone.of(schedule.time_zone)
            ),
            schedule_group=self.schedule_group,
            target=rotation_target,
            time_window=(
                scheduler.TimeWindow.flexible(window)
                if window is not None and window.to_minutes() > 0
                else scheduler.TimeWindow.off()
            ),
            enabled=schedule.enabled,
        )
        rotation_schedule.node.add_dependency(rotation)

        return InstallationResources(
            installation=installation,
            secret=secret,
            api_key_secret=api_key_secret,
            smtp_user=smtp_user,
            rotation=rotation,
            schedule=rotation_schedule,
        )

    def _send_raw_email_statement(self, installation: KionInstallation) -> iam.PolicyStatement:
        """The only permission an SES SMTP user needs, in its SES region and this account."""
        ses_arn = f"arn:{Aws.PARTITION}:ses:{installation.ses_region}:{Aws.ACCOUNT_ID}"
        return iam.PolicyStatement(
            actions=["ses:SendRawEmail"],
            resources=[f"{ses_arn}:identity/*", f"{ses_arn}:configuration-set/*"],
            conditions=(
                {"StringLike": {"ses:FromAddress": installation.from_address}}
                if installation.from_address
                else None
            ),
        )

    def _grant_rotation_access(
        self,
        secret: secretsmanager.ISecret,
        api_key_secret: secretsmanager.ISecret,
        smtp_user: iam.IUser,
    ) -> None:
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:PutSecretValue",
                    "secretsmanager:UpdateSecretVersionStage",
                    "secretsmanager:ListSecretVersionIds",
                ],
                resources=[secret.secret_arn],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"], resources=[api_key_secret.secret_arn]
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:ListAccessKeys", "iam:CreateAccessKey", "iam:DeleteAccessKey"],
                resources=[smtp_user.user_arn],
            )
        )

    # -- function surroundings --------------------------------------------------------------------

    def _grant_key_use(self, key: kms.IKey) -> None:
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                resources=[key.key_arn],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": (
                            f"secretsmanager.{self._stack.region}.{self._stack.url_suffix}"
                        )
                    }
                },
            )
        )

    def _grant_network_interfaces(self) -> iam.Policy:
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

    def _create_network(
        self,
        vpc: ec2.IVpc,
        vpc_subnets: ec2.SubnetSelection | None,
        *,
        https_egress_cidrs: Sequence[str],
        smtp_egress_cidrs: Sequence[str],
        create_ses_smtp_endpoint: bool,
        create_secrets_manager_endpoint: bool,
    ) -> ec2.SecurityGroup:
        security_group = ec2.SecurityGroup(
            self,
            "FunctionSecurityGroup",
            vpc=vpc,
            description="SES SMTP rotation function: HTTPS to Kion and AWS APIs, SMTP to SES",
            allow_all_outbound=False,
        )
        # HTTPS: Kion's API and the AWS APIs without a VPC endpoint here (IAM at least).
        https_ports = {443} | {installation.kion_port for installation in self._installation_specs}
        for cidr in https_egress_cidrs:
            for port in sorted(https_ports):
                security_group.add_egress_rule(
                    ec2.Peer.ipv4(cidr), ec2.Port.tcp(port), f"HTTPS to Kion and AWS APIs ({port})"
                )

        region = self._stack.region
        local_smtp_ports = sorted(
            {
                installation.smtp_port
                for installation in self._installation_specs
                if installation.ses_region == region
            }
        )
        if create_ses_smtp_endpoint:
            if not local_smtp_ports:
                raise ValueError(
                    f"create_ses_smtp_endpoint adds an SES SMTP endpoint in {region}, but no "
                    "installation sends through SES in that region."
                )
            endpoint = self._interface_endpoint(
                vpc,
                vpc_subnets,
                "SesSmtpEndpoint",
                ec2.InterfaceVpcEndpointService(
                    f"com.amazonaws.{region}.email-smtp", local_smtp_ports[0]
                ),
                "SES SMTP interface endpoint for the rotation function",
            )
            for port in local_smtp_ports:
                endpoint.connections.allow_from(
                    security_group, ec2.Port.tcp(port), f"SMTP from the rotation function ({port})"
                )
                security_group.connections.allow_to(
                    endpoint, ec2.Port.tcp(port), f"SMTP to the SES endpoint ({port})"
                )
        remote_smtp_ports = sorted(
            {
                installation.smtp_port
                for installation in self._installation_specs
                if not (create_ses_smtp_endpoint and installation.ses_region == region)
            }
        )
        for cidr in smtp_egress_cidrs:
            for port in remote_smtp_ports:
                security_group.add_egress_rule(
                    ec2.Peer.ipv4(cidr), ec2.Port.tcp(port), f"SMTP to SES ({port})"
                )

        if create_secrets_manager_endpoint:
            endpoint = self._interface_endpoint(
                vpc,
                vpc_subnets,
                "SecretsManagerEndpoint",
                ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
                "Secrets Manager interface endpoint for the rotation function",
            )
            endpoint.connections.allow_from(
                security_group, ec2.Port.tcp(443), "HTTPS from the rotation function"
            )
            security_group.connections.allow_to(
                endpoint, ec2.Port.tcp(443), "HTTPS to the Secrets Manager endpoint"
            )
        return security_group

    def _interface_endpoint(
        self,
        vpc: ec2.IVpc,
        vpc_subnets: ec2.SubnetSelection | None,
        construct_id: str,
        service: ec2.IInterfaceVpcEndpointService,
        description: str,
    ) -> ec2.InterfaceVpcEndpoint:
        endpoint_security_group = ec2.SecurityGroup(
            self,
            f"{construct_id}SecurityGroup",
            vpc=vpc,
            description=description,
            allow_all_outbound=False,
        )
        return ec2.InterfaceVpcEndpoint(
            self,
            construct_id,
            vpc=vpc,
            service=service,
            subnets=vpc_subnets,
            private_dns_enabled=True,
            open=False,
            security_groups=[endpoint_security_group],
        )

    # -- alerting ---------------------------------------------------------------------------------

    def _create_topic(self) -> sns.Topic:
        return sns.Topic(
            self,
            "Alerts",
            display_name="SES SMTP rotation alerts",
            enforce_ssl=True,
        )

    def _add_alerts(self) -> None:
        alarm_action = cloudwatch_actions.SnsAction(self.topic)
        rule = events.Rule(
            self,
            "RotationFailures",
            description="Failed or abandoned rotations of the Kion SES SMTP secrets",
            event_pattern=events.EventPattern(
                source=["aws.secretsmanager"],
                detail_type=["AWS Service Event via CloudTrail"],
                detail={
                    "eventSource": ["secretsmanager.amazonaws.com"],
                    "eventName": list(ALERTED_ROTATION_EVENTS),
                    "additionalEventData": {
                        "SecretId": [secret.secret_arn for secret in self.secrets]
                    },
                },
            ),
        )
        message = events.RuleTargetInput.from_text(
            f"Secrets Manager reports {events.EventField.from_path('$.detail.eventName')} "
            f"for {events.EventField.from_path('$.detail.additionalEventData.SecretId')} "
            f"at {events.EventField.from_path('$.time')}. Kion keeps the credential it "
            "had; see the rotation function's log group "
            f"{self.log_group.log_group_name} for the cause and the fix."
        )
        if not isinstance(self.topic, sns.Topic):
            # An existing topic: EventBridge publishes through a role of this rule, so the
            # topic's own access policy needs no change.
            rule.add_target(
                events_targets.SnsTopic(self.topic, message=message, authorize_using_role=True)
            )
        else:
            rule.add_target(_TopicTarget(self.topic, message))
            # EventBridge may publish to the topic for this rule only.
            self.topic.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="RotationFailureEvents",
                    principals=[iam.ServicePrincipal("events.amazonaws.com")],
                    actions=["sns:Publish"],
                    resources=[self.topic.topic_arn],
                    conditions={"ArnEquals": {"aws:SourceArn": rule.rule_arn}},
                )
            )

        self._alarm(
            "FunctionErrors",
            "The SES SMTP rotation function failed; its log group names the cause and the fix.",
            self.function.metric_errors(period=Duration.minutes(5), statistic=cloudwatch.Stats.SUM),
        ).add_alarm_action(alarm_action)
        self._alarm(
            "ScheduleTargetErrors",
            "EventBridge Scheduler could not start a rotation (RotateSecret failed, for example "
            "because a rotation was still in progress); start it on demand.",
            self.schedule_group.metric_target_errors(
                period=Duration.minutes(5), statistic=cloudwatch.Stats.SUM
            ),
        ).add_alarm_action(alarm_action)

    def _alarm(
        self, alarm_id: str, description: str, metric: cloudwatch.IMetric
    ) -> cloudwatch.Alarm:
        """An alarm on any occurrence of ``metric`` in five minutes."""
        return cloudwatch.Alarm(
            self,
            alarm_id,
            alarm_description=description,
            metric=metric,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    # -- cdk-nag ----------------------------------------------------------------------------------

    def _acknowledge_findings(self) -> None:
        """Acknowledge, with its reason, each AWS Solutions finding the design accepts."""
        _acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no "
            "resource-level permissions, so Lambda's tracing statement needs Resource *. Every "
            "other statement of this role names its secrets, users and key.",
        )
        _acknowledge(
            self.function,
            "AwsSolutions-L1",
            "The function runs the Python runtime its code is tested on (3.12 by default, the "
            "suite runs on 3.11 and 3.12). Choose a newer one with the runtime property after "
            "testing the rotation on it; Powertools' managed layer follows the choice.",
        )
        if self._network_policy is not None:
            _acknowledge(
                self._network_policy,
                "AwsSolutions-IAM5[Resource::*]",
                "VPC attachment: Lambda creates, describes and deletes the function's network "
                "interfaces with these EC2 actions, which it requires on Resource *.",
            )
        for resources in self.installations.values():
            name = resources.installation.name
            _acknowledge(
                resources.secret,
                "AwsSolutions-SMG4",
                f"Rotation of {name} is attached to the rotation function; its schedule is the "
                "EventBridge Scheduler schedule that calls RotateSecret, so scheduled and "
                "on-demand rotations take one path. A native rotation rule would be a second, "
                "competing schedule.",
            )
            if isinstance(resources.api_key_secret, secretsmanager.Secret):
                _acknowledge(
                    resources.api_key_secret,
                    "AwsSolutions-SMG4",
                    f"Kion's App API key for {name} is issued, expired and replaced in Kion "
                    "(its app_api_key_lifespan setting); the operator stores each new key here. "
                    "Secrets Manager cannot create Kion API keys, so there is nothing to rotate.",
                )
            if isinstance(resources.smtp_user, iam.User):
                ses_arn = (
                    f"arn:<AWS::Partition>:ses:{resources.installation.ses_region}:<AWS::AccountId>"
                )
                for resource in ("identity/*", "configuration-set/*"):
                    _acknowledge(
                        resources.smtp_user,
                        f"AwsSolutions-IAM5[Resource::{ses_arn}:{resource}]",
                        f"The SES SMTP user of {name} may only call ses:SendRawEmail, through the "
                        "verified identities (and their configuration sets) of its SES region in "
                        "this account: the stack does not know which identity Kion sends from. "
                        "Set fromAddress to limit the sender as well.",
                    )


@jsii.implements(events.IRuleTarget)
class _TopicTarget:
    """Publishes the rule's events to an SNS topic. The topic's access policy is the caller's to
    set (``events_targets.SnsTopic`` would grant EventBridge publishing for any rule)."""

    def __init__(self, topic: sns.ITopic, message: events.RuleTargetInput) -> None:
        self._topic = topic
        self._message = message

    def bind(self, _rule: events.IRule, _id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self._topic.topic_arn, input=self._message)


def _acknowledge(scope: Construct, rule_id: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def _check_installations(installations: Sequence[KionInstallation]) -> None:
    if not installations:
        raise ValueError("Name at least one Kion installation to rotate.")
    seen: set[str] = set()
    for installation in installations:
        key = installation.name.lower()
        if key in seen:
            raise ValueError(
                f"Two installations are named {installation.name!r}; names must differ."
            )
        seen.add(key)
