"""Alerts to one SNS topic: failed or abandoned rotations of any installation secret of the
deployment (an EventBridge rule matching the secrets' name prefix, one JSON notice per event that
names the installation) and schedules that could not start a rotation (an alarm). The rotation
function's error alarm shows on the dashboard without paging: each of its errors is a failed
rotation step, which Secrets Manager reports as RotationFailed, and that event pages already."""

from __future__ import annotations

import jsii
from aws_cdk import Aws, Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from .alarms import console_host, deployment_alarm

# The rotation events Secrets Manager reports through CloudTrail that need a person's attention.
ALERTED_ROTATION_EVENTS = ("RotationFailed", "RotationAbandoned")


class RotationAlerts(Construct):
    """``topic`` (given or created) and what publishes to it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment_name: str,
        topic: sns.ITopic | None,
        email: str | None,
        secret_id_prefixes: list[str],
        function: lambda_.IFunction,
        log_group: logs.ILogGroup,
        schedule_group: scheduler.IScheduleGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic: sns.ITopic = topic or sns.Topic(
            scope, "Alerts", display_name="SES SMTP rotation alerts", enforce_ssl=True
        )
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        self.rule = self._rotation_failure_rule(secret_id_prefixes, log_group)
        function_errors = deployment_alarm(
            self,
            "RotationFunctionErrors",
            deployment_name=deployment_name,
            topic=self.topic,
            watches="the errors of the rotation function",
            cause="a rotation step failed; Kion keeps the credential it had.",
            fix=f"the function's log group {log_group.log_group_name} names the step, cause and "
            "fix (ses-smtp-rotator history shows it).",
            metric=function.metric_errors(
                period=Duration.minutes(5), statistic=cloudwatch.Stats.SUM
            ),
            paging=False,
        )
        schedule_errors = deployment_alarm(
            self,
            "ScheduleTargetErrors",
            deployment_name=deployment_name,
            topic=self.topic,
            watches="the rotation schedules",
            cause="EventBridge Scheduler could not start a rotation (RotateSecret failed, for "
            "example because a rotation was still in progress).",
            fix="start it on demand with ses-smtp-rotator rotate INSTALLATION.",
            metric=schedule_group.metric_target_errors(
                period=Duration.minutes(5), statistic=cloudwatch.Stats.SUM
            ),
        )
        self.alarms = [function_errors, schedule_errors]

    def _rotation_failure_rule(
        self, secret_id_prefixes: list[str], log_group: logs.ILogGroup
    ) -> events.Rule:
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
                    # One prefix for every installation: the pattern's size does not grow.
                    "additionalEventData": {
                        "SecretId": [{"prefix": prefix} for prefix in secret_id_prefixes]
                    },
                },
            ),
        )
        secret_id = events.EventField.from_path("$.detail.additionalEventData.SecretId")
        # A JSON object (EventBridge's input transformer), not a quoted string.
        message = events.RuleTargetInput.from_object(
            {
                "summary": (
                    f"Secrets Manager reports {events.EventField.from_path('$.detail.eventName')} "
                    f"for {secret_id}: the rotation of this Kion installation's SES SMTP "
                    "credential did not finish. Kion keeps the credential it had."
                ),
                "event": events.EventField.from_path("$.detail.eventName"),
                "secret": secret_id,
                "account": events.EventField.account,
                "region": events.EventField.region,
                "time": events.EventField.time,
                "cause": (
                    "The failed step and its cause are in the rotation function's log group "
                    f"{log_group.log_group_name}."
                ),
                "fix": (
                    f"Run ses-smtp-rotator status {secret_id}: it names the failed step, its "
                    "cause and fix, and whether to rotate again or abandon the rotation."
                ),
                "history": f"ses-smtp-rotator history {secret_id}",
                "console": (
                    f"https://{console_host(self)}/secretsmanager/secret?name={secret_id}"
                    f"&region={Aws.REGION}"
                ),
            }
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
        return rule


@jsii.implements(events.IRuleTarget)
class _TopicTarget:
    """Publishes the rule's events to an SNS topic. The topic's access policy is the caller's to
    set (``events_targets.SnsTopic`` would grant EventBridge publishing for any rule)."""

    def __init__(self, topic: sns.ITopic, message: events.RuleTargetInput) -> None:
        self._topic = topic
        self._message = message

    def bind(self, _rule: events.IRule, _id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self._topic.topic_arn, input=self._message)
