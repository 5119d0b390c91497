"""Alerts: failed and abandoned rotations, function errors and failed schedule runs reach SNS."""

from __future__ import annotations

import json

from synthesized_app import EXISTING_TOPIC_ARN, Synthesized, only, statements_of


def test_failed_and_abandoned_rotations_of_these_secrets_go_to_the_topic(
    fleet_app: Synthesized, default_app: Synthesized
) -> None:
    rotation = fleet_app.stack.rotation
    rule = only(fleet_app.resources("AWS::Events::Rule"), "rotation failure rule")["Properties"]
    assert rule["EventPattern"] == {
        "source": ["aws.secretsmanager"],
        "detail-type": ["AWS Service Event via CloudTrail"],
        "detail": {
            "eventSource": ["secretsmanager.amazonaws.com"],
            "eventName": ["RotationFailed", "RotationAbandoned"],
            "additionalEventData": {
                # One prefix for all of the deployment's secrets (ARN or name): constant size.
                "SecretId": [
                    {
                        "prefix": fleet_app.stack.resolve(
                            rotation.deployment.secrets_arn_prefix(fleet_app.stack)
                        )
                    },
                    {"prefix": "ses-smtp-rotator/SesSmtpRotator/smtp/"},
                ]
            },
        },
    }
    target = only(rule["Targets"], "rule target")
    assert target["Arn"] == EXISTING_TOPIC_ARN
    template = str(target["InputTransformer"]["InputTemplate"])
    assert "<detail-eventName>" in template
    assert "<detail-additionalEventData-SecretId>" in template

    default_rule = only(default_app.resources("AWS::Events::Rule"), "rule")["Properties"]
    topic_id = default_app.logical_id(default_app.stack.rotation.topic)
    assert only(default_rule["Targets"], "target")["Arn"] == {"Ref": topic_id}


def test_eventbridge_may_publish_to_the_created_topic_for_this_rule_only(
    default_app: Synthesized,
) -> None:
    rotation = default_app.stack.rotation
    topic_id = default_app.logical_id(rotation.topic)
    rule_id = only(list(default_app.resources("AWS::Events::Rule")), "rule")
    policy = only(default_app.resources("AWS::SNS::TopicPolicy"), "topic policy")["Properties"]
    statements = policy["PolicyDocument"]["Statement"]
    events_statement = only(
        [s for s in statements if s.get("Principal") == {"Service": "events.amazonaws.com"}],
        "EventBridge statement",
    )
    assert events_statement["Action"] == "sns:Publish"
    assert events_statement["Resource"] == {"Ref": topic_id}
    assert events_statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}
    }
    # Publishing without TLS is refused.
    assert any(
        s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )


def test_an_existing_topic_is_reached_through_a_role_of_the_rule(fleet_app: Synthesized) -> None:
    fleet_app.template.resource_count_is("AWS::SNS::Topic", 0)
    fleet_app.template.resource_count_is("AWS::SNS::TopicPolicy", 0)
    rule = only(fleet_app.resources("AWS::Events::Rule"), "rule")["Properties"]
    role_id = only(rule["Targets"], "target")["RoleArn"]["Fn::GetAtt"][0]
    statement = only(statements_of(fleet_app, role_id), "rule role statement")
    assert statement["Action"] == "sns:Publish"
    assert statement["Resource"] == EXISTING_TOPIC_ARN


def test_the_failure_notice_is_a_json_object_naming_where_what_and_the_command(
    default_app: Synthesized,
) -> None:
    rule = only(default_app.resources("AWS::Events::Rule"), "rule")["Properties"]
    template = only(rule["Targets"], "target")["InputTransformer"]["InputTemplate"]
    text = (
        template
        if isinstance(template, str)
        else "".join(part if isinstance(part, str) else "TOKEN" for part in template["Fn::Join"][1])
    )
    assert text.lstrip().startswith("{")  # an object, not a quoted string
    for field in ('"account":<account>', '"region":<region>', '"secret":<detail-'):
        assert field in text
    assert "ses-smtp-rotator status <detail-additionalEventData-SecretId>" in text
    assert "ses-smtp-rotator history <detail-additionalEventData-SecretId>" in text
    assert "/secretsmanager/secret?name=<detail-additionalEventData-SecretId>" in text


def test_alarms_are_named_after_the_deployment_and_what_they_watch(
    default_app: Synthesized,
) -> None:
    alarms = default_app.resources("AWS::CloudWatch::Alarm").values()
    assert sorted(a["Properties"]["AlarmName"] for a in alarms) == [
        f"SesSmtpRotator-{what}"
        for what in (
            "InstallationsFailing",
            "InstallationsUnwatched",
            "KionApiKeyRenewalErrors",
            "RotationFunctionErrors",
            "ScheduleTargetErrors",
            "WatchErrors",
            "WatchNotRunning",
        )
    ]


def test_paging_alarms_tell_the_topic_when_they_fire_and_when_they_recover(
    default_app: Synthesized,
) -> None:
    topic = [{"Ref": default_app.logical_id(default_app.stack.rotation.topic)}]
    paging = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in default_app.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("AlarmActions")
    }
    assert len(paging) == 5
    for name, alarm in paging.items():
        assert alarm["AlarmActions"] == topic, name
        assert alarm["OKActions"] == topic, name
        description = json.dumps(alarm["AlarmDescription"])
        for part in ("account ", "region ", "Cause: ", "Fix: ", "ses-smtp-rotator status"):
            assert part in description, (name, part)
        assert "/cloudwatch/home?region=" in description
        assert f"alarm/{name}" in description


def test_one_failure_pages_once(default_app: Synthesized) -> None:
    """A failed step is paged by Secrets Manager's RotationFailed event (which names the
    installation), a failing installation by the watch's notice: their alarms page nobody."""
    quiet = {
        a["Properties"]["AlarmName"]
        for a in default_app.resources("AWS::CloudWatch::Alarm").values()
        if not a["Properties"].get("AlarmActions")
    }
    assert quiet == {"SesSmtpRotator-RotationFunctionErrors", "SesSmtpRotator-InstallationsFailing"}


def test_function_errors_raise_an_alarm_on_the_dashboard(default_app: Synthesized) -> None:
    rotation = default_app.stack.rotation
    function_id = default_app.logical_id(rotation.function)
    alarm = only(
        [
            a
            for a in default_app.resources("AWS::CloudWatch::Alarm").values()
            if a["Properties"].get("Namespace") == "AWS/Lambda"
            and a["Properties"]["Dimensions"][0]["Value"] == {"Ref": function_id}
        ],
        "function error alarm",
    )["Properties"]
    assert alarm["MetricName"] == "Errors"
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
    assert alarm["Statistic"] == "Sum"
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert "AlarmActions" not in alarm


def test_failed_schedule_runs_raise_an_alarm_on_the_topic(fleet_app: Synthesized) -> None:
    alarm = only(
        [
            a
            for a in fleet_app.resources("AWS::CloudWatch::Alarm").values()
            if a["Properties"].get("Namespace") == "AWS/Scheduler"
        ],
        "schedule alarm",
    )["Properties"]
    assert alarm["MetricName"] == "TargetErrorCount"
    assert alarm["Dimensions"][0]["Name"] == "ScheduleGroup"
    assert alarm["AlarmActions"] == [EXISTING_TOPIC_ARN]


def test_alert_email_is_subscribed_when_set(
    fleet_app: Synthesized, default_app: Synthesized
) -> None:
    fleet_app.template.has_resource_properties(
        "AWS::SNS::Subscription",
        {"Protocol": "email", "Endpoint": "platform@example.com", "TopicArn": EXISTING_TOPIC_ARN},
    )
    default_app.template.resource_count_is("AWS::SNS::Subscription", 0)


def test_outputs_name_the_secrets_function_logs_and_topic_but_no_secret_value(
    default_app: Synthesized,
) -> None:
    rotation = default_app.stack.rotation
    prod = rotation.installations["prod"]
    outputs = {key: output["Value"] for key, output in default_app.template_json["Outputs"].items()}
    (nested_template,) = [
        template
        for template in default_app.templates.values()
        if default_app.logical_id(prod.secret) in template.get("Resources", {})
    ]
    nested_outputs = {key: output["Value"] for key, output in nested_template["Outputs"].items()}
    assert outputs == {
        "FunctionName": {"Ref": default_app.logical_id(rotation.function)},
        "AlertTopicArn": {"Ref": default_app.logical_id(rotation.topic)},
        "LogGroupName": {"Ref": default_app.logical_id(rotation.log_group)},
        "ScheduleGroupName": default_app.stack.resolve(rotation.schedule_group.schedule_group_name),
        "InstallationSecretPrefix": "ses-smtp-rotator/SesSmtpRotator/smtp/",
        "KionApiKeySecretPrefix": "ses-smtp-rotator/SesSmtpRotator/kion-api-key/",
        "WatchFunctionName": {"Ref": default_app.logical_id(rotation.watch.function)},
        "DashboardName": {"Ref": default_app.logical_id(rotation.dashboard)},
        "OperatorPolicyArn": {"Ref": default_app.logical_id(rotation.operator_policy)},
    }
    assert nested_outputs == {
        "ProdSecretArn": {"Ref": default_app.logical_id(prod.secret)},
        "ProdKionApiKeySecretArn": {"Ref": default_app.logical_id(prod.api_key_secret)},
        "ProdSmtpUserName": {"Ref": default_app.logical_id(prod.smtp_user)},
    }
    for value in [*outputs.values(), *nested_outputs.values()]:
        assert "resolve:secretsmanager" not in str(value)
        assert "Fn::GetAtt" not in str(value)  # no attribute of a secret: only names and ARNs
