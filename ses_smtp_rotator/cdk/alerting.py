"""Alerts to one SNS topic: failed or abandoned rotations of any installation secret of the
deployment (an EventBridge rule matching the secrets' name prefix), rotation function errors and
schedules that could not start a rotation (alarms)."""

from __future__ import annotations

import jsii
from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

# The rotation events Secrets Manager reports through CloudTrail that need a person's attention.
ALERTED_ROTATION_EVENTS = ("RotationFailed", "RotationAbandoned")


class RotationAlerts(Construct):
    """``topic`` (given or created) and what publishes to it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
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
        alarm_action = cloudwatch_actions.SnsAction(self.topic)
        function_errors = self._alarm(
            "FunctionErrors",
            "The SES SMTP rotation function failed; its log group names the cause and the fix.",
            function.metric_errors(period=Duration.minutes(5), statistic=cloudwatch.Stats.SUM),
        )
        schedule_errors = self._alarm(
            "ScheduleTargetErrors",
            "EventBridge Scheduler could not start a rotation (RotateSecret failed, for example "
            "because a rotation was still in progress); start it on demand.",
            schedule_group.metric_target_errors(
                period=Duration.minutes(5), statistic=cloudwatch.Stats.SUM
            ),
        )
        self.alarms = [function_errors, schedule_errors]
        for alarm in self.alarms:
            alarm.add_alarm_action(alarm_action)

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
        message = events.RuleTargetInput.from_text(
            f"Secrets Manager reports {events.EventField.from_path('$.detail.eventName')} "
            f"for {events.EventField.from_path('$.detail.additionalEventData.SecretId')} "
            f"at {events.EventField.from_path('$.time')}. Kion keeps the credential it "
            "had; see the rotation function's log group "
            f"{log_group.log_group_name} for the cause and the fix."
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


@jsii.implements(events.IRuleTarget)
class _TopicTarget:
    """Publishes the rule's events to an SNS topic. The topic's access policy is the caller's to
    set (``events_targets.SnsTopic`` would grant EventBridge publishing for any rule)."""

    def __init__(self, topic: sns.ITopic, message: events.RuleTargetInput) -> None:
        self._topic = topic
        self._message = message

    def bind(self, _rule: events.IRule, _id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self._topic.topic_arn, input=self._message)
