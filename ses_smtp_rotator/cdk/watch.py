"""The daily watch: a function that checks every installation of the deployment, run by
EventBridge Scheduler, with the alarms that tell when it finds a failing installation, fails
itself, stops running, or when a Kion API key renewal fails.

Its role reads what the checks read and may start a renewal of the deployment's Kion API key
secrets (``RotateSecret``, which invokes the renewal function); it changes nothing else. Like the
rotation function's, its statements reach the deployment by name prefix, tag and IAM path, so the
policy keeps its size at any number of installations.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from aws_cdk import Aws, Duration, RemovalPolicy, Stack, TimeZone
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from ses_smtp_rotator.functions.watch.health import SES_UNREACHABLE_TAG
from ses_smtp_rotator.functions.watch.incidents import incident_parameter_prefix
from ses_smtp_rotator.schedule import ROTATION_MARGIN, schedule_gap

from . import acknowledgments
from .alarms import deployment_alarm
from .deployment import Deployment
from .function import (
    DEFAULT_PREVIOUS_KEY_GRACE,
    METRICS_NAMESPACE,
    asset_function,
    grace_environment,
    grant_key_use_through_secrets_manager,
    metric_dimensions,
    powertools_environment,
)
from .installation import RotationSchedule

# The daily watch: 06:00 UTC, before a working day starts in Europe and the Americas.
DEFAULT_WATCH_SCHEDULE = "cron(0 6 * * ? *)"
WATCH_HANDLER = "ses_smtp_rotator.functions.watch.handler.lambda_handler"
WATCH_TIMEOUT = Duration.minutes(15)
WATCH_CONCURRENCY = 8
"""Installations checked at once: invocations the queue's event source runs in parallel."""
WATCH_DELIVERIES = 2
"""How often a message is handled before it is kept in the dead-letter queue."""
# What the watch reads of a Kion API key secret: its stages, the key, and the creation date of
# a renewal's pending version that never got a value.
_KEY_SECRET_READS = (
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:ListSecretVersionIds",
)


def longest_gap(schedule: RotationSchedule) -> timedelta | None:
    """The longest time between two runs of ``schedule`` (plus its flexible window); None when it
    is disabled or its runs cannot be computed."""
    if not schedule.enabled:
        return None
    window = schedule.flexible_window.to_minutes() if schedule.flexible_window else 0
    return schedule_gap(schedule.expression, schedule.time_zone, window)


class InstallationWatch(Construct):
    """The watch function (``function``) with its ``role``, ``log_group``, ``schedule`` and
    ``alarms``. ``grant_ask(grantee)`` lets a person ask it about one installation (what
    ``ses-smtp-rotator status`` does)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment: Deployment,
        code: lambda_.Code,
        runtime: lambda_.Runtime,
        layer: lambda_.ILayerVersion,
        rotation_schedule: RotationSchedule,
        rotation_timeout: Duration,
        renewal_function: lambda_.IFunction,
        topic: sns.ITopic,
        schedule_group: scheduler.IScheduleGroup,
        watch_schedule: str = DEFAULT_WATCH_SCHEDULE,
        previous_key_grace: Duration = DEFAULT_PREVIOUS_KEY_GRACE,
        imported_api_key_secret_arns: Sequence[str] = (),
        imported_user_arns: Sequence[str] = (),
        log_level: str = "INFO",
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        encryption_key: kms.IKey | None = None,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_group: ec2.ISecurityGroup | None = None,
        role_name: str | None = None,
        role_path: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        environment = {
            **powertools_environment(log_level, deployment),
            "INSTALLATION_SECRET_PREFIX": deployment.secret_prefix,
            "KION_API_KEY_SECRET_PREFIX": deployment.api_key_secret_prefix,
            "ROTATION_FUNCTION_TIMEOUT_SECONDS": str(int(rotation_timeout.to_seconds())),
            "ALERT_TOPIC_ARN": topic.topic_arn,
            "INCIDENT_PARAMETER_PREFIX": incident_parameter_prefix(deployment.name),
            **grace_environment(previous_key_grace),
        }
        gap = longest_gap(rotation_schedule)
        if gap is not None:
            max_age = (gap + ROTATION_MARGIN) / timedelta(days=1)
            environment["ROTATION_MAX_AGE_DAYS"] = f"{max_age:.3f}".rstrip("0").rstrip(".")
        self.role, self.log_group, self.function = asset_function(
            self,
            role_name=role_name,
            role_path=role_path,
            role_description="Checks the Kion installations daily and starts Kion API key renewals",
            description="Daily watch of the Kion installations' SES SMTP credentials",
            handler=WATCH_HANDLER,
            code=code,
            runtime=runtime,
            layer=layer,
            timeout=WATCH_TIMEOUT,
            memory_size=256,
            tracing=lambda_.Tracing.ACTIVE,
            environment=environment,
            log_retention=log_retention,
            removal_policy=removal_policy,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_group=security_group,
        )
        self._fan_out()
        self._grant_checks(deployment, stack, imported_api_key_secret_arns, imported_user_arns)
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="StartKionApiKeyRenewals",
                actions=["secretsmanager:RotateSecret"],
                resources=[deployment.api_key_secrets_arn(stack), *imported_api_key_secret_arns],
            )
        )
        # RotateSecret invokes the renewal function as its caller.
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="InvokeKionApiKeyRenewal",
                actions=["lambda:InvokeFunction"],
                resources=[renewal_function.function_arn],
            )
        )
        topic.grant_publish(self.role)
        # The open incidents (one notice per incident): parameters under the deployment's path.
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="OpenIncidents",
                actions=["ssm:GetParameter", "ssm:PutParameter", "ssm:DeleteParameter"],
                resources=[
                    f"arn:{Aws.PARTITION}:ssm:{stack.region}:{stack.account}:parameter"
                    f"{incident_parameter_prefix(deployment.name)}*"
                ],
            )
        )
        if encryption_key is not None:
            grant_key_use_through_secrets_manager(self.role, encryption_key)

        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            description=f"Daily watch of SES SMTP rotation deployment {deployment.name}",
            schedule=scheduler.ScheduleExpression.expression(watch_schedule, TimeZone.ETC_UTC),
            schedule_group=schedule_group,
            target=scheduler_targets.LambdaInvoke(
                self.function, role=self._scheduler_role(schedule_group), retry_attempts=2
            ),
        )
        self.alarms = self._alarms(deployment, topic, renewal_function)

    def _scheduler_role(self, schedule_group: scheduler.IScheduleGroup) -> iam.Role:
        """The role the schedule invokes the watch with (the target grants it the invoke)."""
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={
                    "StringEquals": {
                        "aws:SourceAccount": Stack.of(self).account,
                        "aws:SourceArn": schedule_group.schedule_group_arn,
                    }
                },
            ),
            description="Lets EventBridge Scheduler run the daily watch",
        )
        return self.scheduler_role

    def _fan_out(self) -> None:
        """The queue the scheduled run sends one message per installation to, consumed by the
        same function one message per invocation; what cannot be handled after
        ``WATCH_DELIVERIES`` deliveries is kept in a dead-letter queue (an alarm watches it)."""
        self.dead_letters = sqs.Queue(
            self,
            "Unwatched",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.queue = sqs.Queue(
            self,
            "Installations",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # Longer than an invocation, so a message is not delivered again while handled.
            visibility_timeout=WATCH_TIMEOUT.plus(Duration.minutes(1)),
            retention_period=Duration.days(1),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=WATCH_DELIVERIES, queue=self.dead_letters
            ),
        )
        self.queue.grant_send_messages(self.role)
        self.function.add_environment("WATCH_QUEUE_URL", self.queue.queue_url)
        # A mapping of its own id, not SqsEventSource's: that one derives its logical id from the
        # queue's path including the stack's construct id, which a team's own app names otherwise.
        self.queue.grant_consume_messages(self.role)
        self.function.add_event_source_mapping(
            "InstallationsQueue",
            event_source_arn=self.queue.queue_arn,
            batch_size=1,
            max_concurrency=WATCH_CONCURRENCY,
            report_batch_item_failures=True,
        )

    def grant_ask(self, grantee: iam.IGrantable) -> iam.Grant:
        return self.function.grant_invoke(grantee)

    def _grant_checks(
        self,
        deployment: Deployment,
        stack: Stack,
        imported_api_key_secret_arns: Sequence[str],
        imported_user_arns: Sequence[str],
    ) -> None:
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="FindInstallations",
                actions=["secretsmanager:ListSecrets"],
                resources=["*"],
            )
        )
        self.role.add_to_principal_policy(
            deployment.installation_secrets_statement(
                stack,
                actions=[
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:ListSecretVersionIds",
                ],
            )
        )
        self.role.add_to_principal_policy(deployment.retirement_tags_statement(stack))
        # The one write to an installation secret: the tag that remembers since when SES SMTP
        # could not be reached (health.SES_UNREACHABLE_TAG), and no other tag.
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="RememberSesReach",
                actions=["secretsmanager:TagResource", "secretsmanager:UntagResource"],
                resources=[deployment.installation_secrets_arn(stack)],
                conditions={
                    **deployment.tag_condition(),
                    "ForAllValues:StringEquals": {"aws:TagKeys": [SES_UNREACHABLE_TAG]},
                    "Null": {"aws:TagKeys": "false"},
                },
            )
        )
        self.role.add_to_principal_policy(
            deployment.api_key_secrets_statement(stack, actions=list(_KEY_SECRET_READS))
        )
        if imported_api_key_secret_arns:
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="ImportedKionApiKeySecrets",
                    actions=list(_KEY_SECRET_READS),
                    resources=sorted(set(imported_api_key_secret_arns)),
                )
            )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="SmtpUserKeys",
                # Reading keys and last use; deleting the retired ones whose window passed.
                actions=["iam:ListAccessKeys", "iam:GetAccessKeyLastUsed", "iam:DeleteAccessKey"],
                resources=[deployment.users_arn(stack), *sorted(set(imported_user_arns))],
            )
        )

    def _alarms(
        self, deployment: Deployment, topic: sns.ITopic, renewal_function: lambda_.IFunction
    ) -> list[cloudwatch.Alarm]:
        day = Duration.days(1)
        dimensions = metric_dimensions(deployment)

        def watch_metric(name: str, statistic: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=name,
                dimensions_map=dimensions,
                statistic=statistic,
                period=day,
            )

        def alarm(construct_id: str, **properties: object) -> cloudwatch.Alarm:
            return deployment_alarm(
                self, construct_id, deployment_name=deployment.name, topic=topic, **properties
            )

        log_group = self.log_group.log_group_name
        return [
            alarm(
                "InstallationsFailing",
                watches="the installations the daily watch finds failing",
                cause="a Kion installation failed a check.",
                fix="the watch's own notice on the alert topic names the installation, each "
                "failing check, its cause and its fix.",
                metric=watch_metric("InstallationsFailing", cloudwatch.Stats.MAXIMUM),
                paging=False,
            ),
            alarm(
                "WatchNotRunning",
                watches="that the daily watch runs",
                cause="the daily watch checked no installation for two days: its schedule is "
                "disabled or it fails before it checks.",
                fix=f"see the watch function's log group {log_group}.",
                metric=watch_metric("InstallationsChecked", cloudwatch.Stats.SAMPLE_COUNT),
                evaluation_periods=2,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            ),
            alarm(
                "WatchErrors",
                watches="the errors of the daily watch function",
                cause="the daily watch function failed.",
                fix=f"its log group {log_group} names the cause.",
                metric=self.function.metric_errors(period=day, statistic=cloudwatch.Stats.SUM),
            ),
            alarm(
                "KionApiKeyRenewalErrors",
                watches="the errors of the Kion API key renewal function",
                cause="a Kion API key renewal step failed; Secrets Manager retries it, and the "
                "key it replaces stays AWSCURRENT and works until it expires.",
                fix="the renewal function's log group names the cause and the fix "
                "(ses-smtp-rotator history shows it).",
                metric=renewal_function.metric_errors(
                    period=Duration.hours(1), statistic=cloudwatch.Stats.SUM
                ),
            ),
            alarm(
                "InstallationsUnwatched",
                watches="the daily watch's dead-letter queue",
                cause="the daily watch could not handle an installation's message after "
                f"{WATCH_DELIVERIES} attempts (the message names the installation).",
                fix=f"see the watch function's log group {log_group} for the cause.",
                metric=self.dead_letters.metric_approximate_number_of_messages_visible(
                    period=Duration.hours(1), statistic=cloudwatch.Stats.MAXIMUM
                ),
            ),
        ]


def acknowledge_watch(deployment: Deployment, watch: InstallationWatch) -> None:
    stack = Stack.of(watch)
    cfn_function = watch.function.node.default_child
    logical_id = stack.resolve(stack.get_logical_id(cfn_function))
    acknowledgments.acknowledge(
        watch.scheduler_role,
        f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>:*]",
        "The schedule's target grants invoking the watch function and its versions; it is "
        "the only function this role may invoke.",
    )
    acknowledgments.acknowledge(
        watch.role,
        "AwsSolutions-IAM5[Resource::*]",
        "X-Ray active tracing (xray:PutTraceSegments, xray:PutTelemetryRecords) and "
        "secretsmanager:ListSecrets have no resource-level permissions, so they need Resource *; "
        "the watch keeps only the secrets with the deployment's name prefix and tag. Every other "
        "statement of this role names its secrets, users, topic and function.",
    )
    acknowledgments.acknowledge_runtime(watch.function)
    acknowledgments.acknowledge_incident_parameters(
        watch.role, incident_parameter_prefix(deployment.name)
    )
    acknowledgments.acknowledge_deployment_wildcards(
        deployment, watch.role, api_key_secrets=True, users=True
    )
