"""The deployment's alarms, made one way: named after the deployment (the stack's name by default)
and what they watch, described with the account, region, cause, fix, the command to run and a
console link, and telling the alert topic both when they fire and when they recover.

An alarm whose failure another notice already tells (a failed rotation: Secrets Manager's
RotationFailed event; a failing installation: the watch's own incident notice) is made
``paging=False``: it shows on the dashboard and pages nobody, so one failure pages once.
"""

from __future__ import annotations

from urllib.parse import quote

from aws_cdk import Aws, CfnMapping, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

_CONSOLE_HOSTS = {
    "aws": "console.aws.amazon.com",
    "aws-us-gov": "console.amazonaws-us-gov.com",
    "aws-cn": "console.amazonaws.cn",
}
_MAPPING_ID = "SesSmtpRotatorConsoleHosts"


def console_host(scope: Construct) -> str:
    """The AWS console's host name in the stack's partition (resolved at deploy time)."""
    stack = Stack.of(scope)
    mapping = stack.node.try_find_child(_MAPPING_ID)
    if not isinstance(mapping, CfnMapping):
        mapping = CfnMapping(
            stack,
            _MAPPING_ID,
            mapping={partition: {"host": host} for partition, host in _CONSOLE_HOSTS.items()},
        )
    return mapping.find_in_map(Aws.PARTITION, "host")


def alarm_name(deployment_name: str, watched: str) -> str:
    """``<deployment>-<what it watches>``: unique in the account and region, as the
    deployment's secret names are."""
    return f"{deployment_name}-{watched}"


def deployment_alarm(
    scope: Construct,
    construct_id: str,
    *,
    deployment_name: str,
    topic: sns.ITopic,
    watches: str,
    cause: str,
    fix: str,
    metric: cloudwatch.IMetric,
    threshold: float = 1,
    evaluation_periods: int = 1,
    comparison_operator: cloudwatch.ComparisonOperator = (
        cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
    ),
    treat_missing_data: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    paging: bool = True,
) -> cloudwatch.Alarm:
    """An alarm named ``<deployment>-<construct_id>`` watching ``watches``."""
    name = alarm_name(deployment_name, construct_id)
    console = (
        f"https://{console_host(scope)}/cloudwatch/home?region={Aws.REGION}"
        f"#alarmsV2:alarm/{quote(name, safe='')}"
    )
    pages = (
        "It tells the alert topic when it fires and when it recovers."
        if paging
        else "It pages nobody: another notice already tells this failure."
    )
    alarm = cloudwatch.Alarm(
        scope,
        construct_id,
        alarm_name=name,
        alarm_description=(
            f"Watches {watches} of SES SMTP rotation deployment {deployment_name} (account "
            f"{Aws.ACCOUNT_ID}, region {Aws.REGION}). Cause: {cause} Fix: {fix} Run: "
            f"ses-smtp-rotator status --all. Console: {console} {pages}"
        ),
        metric=metric,
        threshold=threshold,
        evaluation_periods=evaluation_periods,
        comparison_operator=comparison_operator,
        treat_missing_data=treat_missing_data,
    )
    if paging:
        action = cloudwatch_actions.SnsAction(topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
    return alarm
