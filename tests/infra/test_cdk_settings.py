"""cdk.json settings: the shipped file loads, defaults hold, and a wrong setting is named."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_logs as logs
from synthesized_app import cdk_json_context

from infra import SettingsError, load_settings

MINIMAL = {
    "installations": [
        {"name": "prod", "kionUrl": "https://kion.example.com", "sesRegion": "us-east-1"}
    ]
}


def load(context: dict[str, Any]) -> Any:
    return load_settings(context.get)


def test_shipped_cdk_json_is_a_working_example() -> None:
    settings = load(cdk_json_context())
    assert [i.name for i in settings.installations] == ["prod"]
    assert settings.region == "us-east-1"
    assert settings.account is None  # the deploying credentials' account


def test_defaults_of_every_optional_setting() -> None:
    settings = load(MINIMAL)
    assert settings.stack_name == "SesSmtpRotator"
    assert settings.region == "us-east-1"
    assert settings.schedule.expression == "cron(0 14 ? * TUE#1 *)"
    assert settings.schedule.time_zone == "UTC"
    assert settings.schedule.flexible_window.to_minutes() == 15
    assert settings.schedule.enabled is True
    assert settings.alarm_email is None
    assert settings.alarm_topic_arn is None
    assert settings.vpc is None
    assert settings.kms_key_arn is None
    assert settings.powertools_layer_arn is None
    assert settings.log_level == "INFO"
    assert settings.log_retention == logs.RetentionDays.ONE_YEAR
    assert settings.ses_accept_timeout.to_seconds() == Duration.seconds(120).to_seconds()
    assert settings.function_timeout.to_seconds() == 300
    assert settings.removal_policy == RemovalPolicy.RETAIN
    installation = settings.installations[0]
    assert installation.resolved_smtp_host == "email-smtp.us-east-1.amazonaws.com"
    assert installation.smtp_port == 587
    assert installation.iam_user_name is None
    assert installation.kion_api_key_secret_arn is None


def test_command_line_context_arrives_as_json_text() -> None:
    settings = load(
        {
            "installations": (
                '[{"name": "a", "kionUrl": "https://a.example", "sesRegion": "eu-west-1"}]'
            ),
            "rotationSchedule": '{"flexibleWindowMinutes": 0}',
        }
    )
    assert settings.installations[0].ses_region == "eu-west-1"
    assert settings.schedule.flexible_window is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"installations": []}, "Setting installations: list at least one"),
        ({"installations": [{"name": "prod"}]}, r"installations\[0\]\.kionUrl: missing"),
        (
            {"installations": [{**MINIMAL["installations"][0], "smtpport": 587}]},
            r"installations\[0\]: unknown key\(s\) smtpport",
        ),
        (
            {"installations": [{**MINIMAL["installations"][0], "smtpPort": "587"}]},
            "smtpPort: must be a whole number",
        ),
        (
            {"installations": [{**MINIMAL["installations"][0], "kionCaBundle": "not pem"}]},
            "kionCaBundle: must be PEM text",
        ),
        (
            {"installations": [{**MINIMAL["installations"][0], "kionUrl": "kion.example.com"}]},
            "https://",
        ),
        ({"rotationSchedule": {"timeZone": "Mars/Olympus"}}, "not an IANA time zone"),
        ({"rotationSchedule": {"expression": "monthly"}}, "EventBridge Scheduler expression"),
        ({"rotationSchedule": {"flexibleWindowMinutes": 2000}}, r"outside 0\.\.1440"),
        ({"alarmEmail": "ops"}, "alarmEmail: 'ops' is not an e-mail address"),
        ({"alarmTopicArn": "platform-alerts"}, "alarmTopicArn"),
        ({"kmsKeyArn": "alias/secrets"}, "kmsKeyArn"),
        ({"region": "useast1"}, "Setting region"),
        ({"account": "1234"}, "12-digit"),
        ({"logRetentionDays": 100}, "not a CloudWatch Logs retention"),
        ({"logLevel": "TRACE"}, "logLevel"),
        ({"functionTimeoutSeconds": 130}, "must exceed the SES wait"),
        ({"functionTimeoutSeconds": 1000}, r"outside 1\.\.900"),
        ({"removalPolicy": "snapshot"}, "removalPolicy"),
        ({"vpc": {"vpcId": "vpc-1", "subnetIds": []}}, "vpc.subnetIds: must be a list"),
        ({"vpc": {"vpcId": "my-vpc", "subnetIds": ["subnet-1"]}}, "not a VPC id"),
        (
            {"vpc": {"vpcId": "vpc-1", "subnetIds": ["subnet-1"], "httpsEgressCidrs": ["any"]}},
            "not an IPv4 CIDR",
        ),
    ],
)
def test_a_wrong_setting_is_named_with_what_to_put_there(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        load({**MINIMAL, **change})
