"""The daily watch, the Kion API key renewal, the dashboard and the operator policy in the stack."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from aws_cdk import Duration
from aws_cdk.assertions import Match
from synthesized_app import EXISTING_API_KEY_ARN, Synthesized, as_list, only, statements_of

from ses_smtp_rotator.cdk.context_settings import SettingsError, load_settings
from ses_smtp_rotator.cdk.installation import RotationSchedule
from ses_smtp_rotator.cdk.watch import longest_gap
from ses_smtp_rotator.functions.watch.health import SES_UNREACHABLE_TAG


def grants(statements: list[dict]) -> set[str]:
    return {action for statement in statements for action in as_list(statement["Action"])}


def properties(app: Synthesized, construct: object) -> dict:
    logical_id = app.logical_id(construct)
    for template in app.templates.values():
        if logical_id in template.get("Resources", {}):
            return template["Resources"][logical_id]["Properties"]
    raise AssertionError(logical_id)


def test_the_watch_runs_daily_by_scheduler_with_what_its_checks_need(
    default_app: Synthesized,
) -> None:
    watch = default_app.stack.rotation.watch
    function = properties(default_app, watch.function)
    assert function["Handler"] == "ses_smtp_rotator.functions.watch.handler.lambda_handler"
    variables = function["Environment"]["Variables"]
    assert variables["DEPLOYMENT_NAME"] == "SesSmtpRotator"
    assert variables["INSTALLATION_SECRET_PREFIX"] == "ses-smtp-rotator/SesSmtpRotator/smtp/"
    assert variables["ROTATION_FUNCTION_TIMEOUT_SECONDS"] == "900"
    assert variables["PREVIOUS_KEY_GRACE_DAYS"] == "7"  # when it deletes retired keys
    # First Tuesday of the month: at most five weeks apart, plus the 15-minute window and the
    # two days' margin.
    assert float(variables["ROTATION_MAX_AGE_DAYS"]) == pytest.approx(37.01, abs=0.01)
    schedule = properties(default_app, watch.schedule)
    assert schedule["ScheduleExpression"] == "cron(0 6 * * ? *)"
    assert schedule["Target"]["Arn"] == {
        "Fn::GetAtt": [default_app.logical_id(watch.function), "Arn"]
    }


def test_the_watch_role_reads_starts_renewals_and_deletes_retired_keys_but_writes_nothing_else(
    fleet_app: Synthesized,
) -> None:
    watch = fleet_app.stack.rotation.watch
    statements = statements_of(fleet_app, fleet_app.logical_id(watch.role))
    actions = grants(statements)
    assert actions >= {
        "secretsmanager:ListSecrets",
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:ListSecretVersionIds",
        "secretsmanager:RotateSecret",
        "iam:ListAccessKeys",
        "iam:GetAccessKeyLastUsed",
        "iam:DeleteAccessKey",  # a retired key whose rollback window has passed
        "secretsmanager:TagResource",  # its record, dropped once it is gone
        "secretsmanager:UntagResource",
        "sns:Publish",
        "lambda:InvokeFunction",
    }
    writes = {
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
        "iam:CreateAccessKey",
        "iam:UpdateAccessKey",
    }
    assert not actions & writes
    [tagging] = [
        s
        for s in statements
        if "secretsmanager:UntagResource" in as_list(s["Action"])
        and "ForAllValues:StringLike" in s.get("Condition", {})
    ]
    assert tagging["Condition"]["ForAllValues:StringLike"]["aws:TagKeys"] == [
        "ses-smtp-rotator:retired:*",
        "ses-smtp-rotator:end-rollback-window",
    ]
    [rotate] = [s for s in statements if "secretsmanager:RotateSecret" in as_list(s["Action"])]
    resources = json.dumps(rotate["Resource"])
    assert "kion-api-key/*" in resources
    assert EXISTING_API_KEY_ARN in resources
    assert "/smtp/" not in resources  # never an SMTP rotation
    # A renewal that stopped before its version got a value is aged by ListSecretVersionIds,
    # on the key secrets the stack creates and on imported ones alike.
    for key_secrets in ("kion-api-key/*", EXISTING_API_KEY_ARN):
        reads = {
            action
            for statement in statements
            if key_secrets in json.dumps(statement["Resource"])
            and "secretsmanager:RotateSecret" not in as_list(statement["Action"])
            for action in as_list(statement["Action"])
        }
        assert reads == {
            "secretsmanager:DescribeSecret",
            "secretsmanager:GetSecretValue",
            "secretsmanager:ListSecretVersionIds",
        }, key_secrets


def test_the_watch_may_write_the_ses_reach_tag_and_no_other_besides_the_retired_key_records(
    fleet_app: Synthesized,
) -> None:
    watch = fleet_app.stack.rotation.watch
    statements = statements_of(fleet_app, fleet_app.logical_id(watch.role))
    tagging = [
        s
        for s in statements
        if {"secretsmanager:TagResource", "secretsmanager:UntagResource"}
        & set(as_list(s["Action"]))
    ]
    # Two statements: this one, and the retired-key records' (the test above).
    assert len(tagging) == 2
    [statement] = [s for s in tagging if "ForAllValues:StringEquals" in s.get("Condition", {})]
    assert set(as_list(statement["Action"])) == {
        "secretsmanager:TagResource",
        "secretsmanager:UntagResource",
    }
    assert "/smtp/" in json.dumps(statement["Resource"])
    conditions = statement["Condition"]
    assert as_list(conditions["ForAllValues:StringEquals"]["aws:TagKeys"]) == [SES_UNREACHABLE_TAG]
    assert conditions["Null"] == {"aws:TagKeys": "false"}  # an empty tag list matches nothing
    assert conditions["StringEquals"] == {
        "secretsmanager:ResourceTag/ses-smtp-rotator:deployment": "SesSmtpRotator"
    }


def test_renewal_is_attached_to_each_created_kion_key_secret_without_rules(
    fleet_app: Synthesized,
) -> None:
    rotation = fleet_app.stack.rotation
    function = properties(fleet_app, rotation.key_renewal_function)
    assert (
        function["Handler"] == "ses_smtp_rotator.functions.kion_key_renewal.handler.lambda_handler"
    )
    created = [r for r in rotation.installations.values() if r.creates_api_key_secret]
    assert 0 < len(created) < len(rotation.installations)  # one installation imports its key
    renewals = {
        logical_id: resource["Properties"]
        for logical_id, resource in fleet_app.resources(
            "AWS::SecretsManager::RotationSchedule"
        ).items()
        if "KionApiKeyRenewal" in logical_id
    }
    assert len(renewals) == len(created)
    secrets = {json.dumps(p["SecretId"]) for p in renewals.values()}
    assert secrets == {json.dumps({"Ref": fleet_app.logical_id(r.api_key_secret)}) for r in created}
    for renewal in renewals.values():
        assert "RotationRules" not in renewal
        assert renewal["RotateImmediatelyOnUpdate"] is False
    role = fleet_app.logical_id(rotation.key_renewal_function.role)
    assert not grants(statements_of(fleet_app, role)) & {
        "iam:CreateAccessKey",
        "iam:DeleteAccessKey",
    }


def test_an_imported_kion_key_secret_can_be_renewed_once_an_operator_attaches_the_renewal(
    fleet_app: Synthesized, default_app: Synthesized
) -> None:
    """The stack attaches no renewal to a secret it imports, but the README's one command that
    attaches it works: the renewal function may write that secret, and Secrets Manager may
    invoke the function for it."""
    renewal = fleet_app.stack.rotation.key_renewal_function
    statements = statements_of(fleet_app, fleet_app.logical_id(renewal.role))
    [imported] = [s for s in statements if EXISTING_API_KEY_ARN in json.dumps(s["Resource"])]
    assert set(as_list(imported["Action"])) == {
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
    }
    invokes = [
        p["Properties"]
        for p in fleet_app.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [fleet_app.logical_id(renewal), "Arn"]}
    ]
    assert {json.dumps(p.get("SourceArn")) for p in invokes} >= {"null"}
    assert all(p["Principal"] == "secretsmanager.amazonaws.com" for p in invokes)
    assert all("SourceAccount" in p for p in invokes)
    # Without imported key secrets, Secrets Manager may invoke it for the deployment's own only.
    assert default_app.stack.rotation.key_renewal_function is not None
    default_invokes = [
        p["Properties"]
        for p in default_app.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"]
        == {
            "Fn::GetAtt": [
                default_app.logical_id(default_app.stack.rotation.key_renewal_function),
                "Arn",
            ]
        }
    ]
    assert len(default_invokes) == 1
    assert "kion-api-key/*" in json.dumps(default_invokes[0]["SourceArn"])


def test_the_dashboard_shows_each_installation_by_metric_search(default_app: Synthesized) -> None:
    dashboard = only(default_app.resources("AWS::CloudWatch::Dashboard"), "dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    searches = [part.split(")", 1)[0] for part in body.split("SEARCH(")[1:]]
    for metric in (
        "Healthy",
        "DaysSinceRotation",
        "KionApiKeyDaysLeft",
        "SesAcceptWaitSeconds",
        "ChecksFailing",
    ):
        assert any(metric in search for search in searches), metric
    assert "SEARCH(" in body
    assert "installation" in body


def test_the_dashboard_keeps_its_size_at_any_number_of_installations(
    default_app: Synthesized, fleet_app: Synthesized
) -> None:
    sizes = {
        len(json.dumps(only(app.resources("AWS::CloudWatch::Dashboard"), "dashboard")))
        for app in (default_app, fleet_app)
    }
    assert len(sizes) == 1


def test_alarms_of_the_watch_go_to_the_alert_topic(default_app: Synthesized) -> None:
    rotation = default_app.stack.rotation
    topic = {"Ref": default_app.logical_id(rotation.topic)}
    default_app.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "InstallationsChecked",
            "Namespace": "SesSmtpRotator",
            "AlarmActions": [topic],
        },
    )
    default_app.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "InstallationsChecked",
            "TreatMissingData": "breaching",
            "ComparisonOperator": "LessThanThreshold",
        },
    )
    default_app.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "Errors",
            "Dimensions": [
                {
                    "Name": "FunctionName",
                    "Value": {"Ref": default_app.logical_id(rotation.key_renewal_function)},
                }
            ],
            "AlarmActions": Match.any_value(),
        },
    )


def test_the_operator_policy_never_reads_a_kion_api_key(fleet_app: Synthesized) -> None:
    rotation = fleet_app.stack.rotation
    policy = properties(fleet_app, rotation.operator_policy)
    statements = policy["PolicyDocument"]["Statement"]
    for statement in statements:
        resources = json.dumps(statement["Resource"])
        if "kion-api-key" in resources or EXISTING_API_KEY_ARN in resources:
            assert "secretsmanager:GetSecretValue" not in as_list(statement["Action"])
    assert grants(statements) == {
        "secretsmanager:ListSecrets",
        "scheduler:ListSchedules",
        "scheduler:GetSchedule",
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:ListSecretVersionIds",
        "secretsmanager:RotateSecret",
        "secretsmanager:PutSecretValue",
        "secretsmanager:TagResource",  # rotate --end-rollback-window: that one tag only
        "secretsmanager:UpdateSecretVersionStage",
        "lambda:InvokeFunction",
        "lambda:GetFunctionConfiguration",
        "logs:FilterLogEvents",
        "iam:ListAccessKeys",
        # check: the SMTP users' send permission and keys, SES's account and identities.
        "iam:GetUser",
        "iam:GetAccessKeyLastUsed",
        "iam:SimulatePrincipalPolicy",
        "ses:GetAccount",
        "ses:GetEmailIdentity",
        # The deployment's KMS key, through Secrets Manager only.
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:GenerateDataKey",
    }
    output = fleet_app.template_json["Outputs"]["OperatorPolicyArn"]["Value"]
    assert output == {"Ref": fleet_app.logical_id(rotation.operator_policy)}


def test_longest_gap_follows_the_rotation_schedule() -> None:
    monthly = RotationSchedule()
    assert longest_gap(monthly) == timedelta(days=35, minutes=15)
    weekly = RotationSchedule("rate(7 days)", flexible_window=None)
    assert longest_gap(weekly) == timedelta(days=7)
    assert longest_gap(RotationSchedule(enabled=False)) is None
    daily = RotationSchedule("cron(0 3 * * ? *)", flexible_window=Duration.minutes(60))
    assert longest_gap(daily) == timedelta(days=1, hours=1)


@pytest.mark.parametrize("expression", ["at(2027-01-01T00:00:00)", "cron(0 6 * * * *)", "daily"])
def test_a_watch_schedule_scheduler_refuses_is_named_at_synth(expression: str) -> None:
    context = {
        "installations": [
            {"name": "prod", "kionUrl": "https://kion.example.com", "sesRegion": "us-east-1"}
        ],
        "watchSchedule": expression,
    }
    with pytest.raises(SettingsError, match="watchSchedule") as refused:
        load_settings(context)
    assert "Fix: " in str(refused.value)


def test_in_a_vpc_the_watch_and_renewal_may_manage_their_network_interfaces(
    vpc_app: Synthesized,
) -> None:
    rotation = vpc_app.stack.rotation
    [network_policy] = [
        policy
        for policy in vpc_app.resources("AWS::IAM::Policy").values()
        if "ec2:CreateNetworkInterface" in json.dumps(policy["Properties"]["PolicyDocument"])
    ]
    roles = network_policy["Properties"]["Roles"]
    for function in (rotation.function, rotation.watch.function, rotation.key_renewal_function):
        properties_of = properties(vpc_app, function)
        assert "VpcConfig" in properties_of
        assert {"Ref": vpc_app.logical_id(function.role)} in roles


def test_the_watch_fans_out_one_installation_per_message_through_its_queue(
    default_app: Synthesized,
) -> None:
    watch = default_app.stack.rotation.watch
    queue_id = default_app.logical_id(watch.queue)
    function = properties(default_app, watch.function)
    assert function["Environment"]["Variables"]["WATCH_QUEUE_URL"] == {"Ref": queue_id}
    default_app.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [queue_id, "Arn"]},
            "FunctionName": {"Ref": default_app.logical_id(watch.function)},
            "BatchSize": 1,
            "ScalingConfig": {"MaximumConcurrency": 8},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )
    queue = properties(default_app, watch.queue)
    # A message is not seen again while an invocation (15 minutes at most) handles it.
    assert queue["VisibilityTimeout"] > 900
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [default_app.logical_id(watch.dead_letters), "Arn"]},
        "maxReceiveCount": 2,
    }
    actions = grants(statements_of(default_app, default_app.logical_id(watch.role)))
    assert "sqs:SendMessage" in actions
    assert "sqs:ReceiveMessage" in actions


def test_an_installation_the_watch_could_not_handle_raises_an_alarm(
    default_app: Synthesized,
) -> None:
    rotation = default_app.stack.rotation
    default_app.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [
                {
                    "Name": "QueueName",
                    "Value": {
                        "Fn::GetAtt": [
                            default_app.logical_id(rotation.watch.dead_letters),
                            "QueueName",
                        ]
                    },
                }
            ],
            "AlarmActions": [{"Ref": default_app.logical_id(rotation.topic)}],
        },
    )


def test_the_dashboard_opens_with_each_installations_latest_rotation_outcome_key_and_verdict(
    default_app: Synthesized,
) -> None:
    dashboard = only(default_app.resources("AWS::CloudWatch::Dashboard"), "dashboard")
    body = json.loads(
        "".join(
            part if isinstance(part, str) else "0"
            for part in dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
        )
    )
    numbers = [w for w in body["widgets"] if w["properties"].get("view") == "singleValue"]
    titles = [w["properties"]["title"] for w in numbers]
    assert titles == [
        "Last rotation (days ago)",
        "Last rotation's outcome (1 finished, 0 a step failed)",
        "Kion API key: days left",
        "Watch verdict (1 healthy, 0 failing)",
    ]
    searches = [json.dumps(w["properties"]["metrics"]) for w in numbers]
    for metric, search in zip(
        ("DaysSinceRotation", "RotationOutcome", "KionApiKeyDaysLeft", "Healthy"),
        searches,
        strict=True,
    ):
        assert "SEARCH(" in search
        assert metric in search
        assert "installation" in search


def test_the_watch_keeps_open_incidents_under_its_deployments_parameter_path_only(
    default_app: Synthesized,
) -> None:
    watch = default_app.stack.rotation.watch
    [statement] = [
        s
        for s in statements_of(default_app, default_app.logical_id(watch.role))
        if "ssm:PutParameter" in s["Action"]
    ]
    assert sorted(statement["Action"]) == [
        "ssm:DeleteParameter",
        "ssm:GetParameter",
        "ssm:PutParameter",
    ]
    assert json.dumps(statement["Resource"]).endswith(
        ':parameter/ses-smtp-rotator/SesSmtpRotator/incidents/*"]]}'
    ), statement["Resource"]
    environment = properties(default_app, watch.function)["Environment"]["Variables"]
    assert environment["INCIDENT_PARAMETER_PREFIX"] == "/ses-smtp-rotator/SesSmtpRotator/incidents/"
