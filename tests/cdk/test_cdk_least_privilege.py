"""Each IAM policy grants exactly the actions the rotation needs, on these resources only."""

from __future__ import annotations

import json
from typing import Any

from synthesized_app import (
    EXISTING_API_KEY_ARN,
    EXISTING_TOPIC_ARN,
    KMS_KEY_ARN,
    Synthesized,
    as_list,
    statements_of,
)


def normalized(statements: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """The (action, resource, condition) grants of ``statements``, however CDK merged them."""
    return {
        (
            action,
            json.dumps(resource, sort_keys=True),
            json.dumps(statement.get("Condition"), sort_keys=True),
        )
        for statement in statements
        for action in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    }


RETIREMENT_TAG_CONDITION = {
    "ForAllValues:StringLike": {
        "aws:TagKeys": ["ses-smtp-rotator:retired:*", "ses-smtp-rotator:end-rollback-window"]
    },
    "Null": {"aws:TagKeys": "false"},
}


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def arn_of(logical_id: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def expected(actions: list[str], resources: list[Any], condition: Any = None) -> dict[str, Any]:
    statement = {"Action": actions, "Resource": resources, "Effect": "Allow"}
    if condition is not None:
        statement["Condition"] = condition
    return statement


def deployment_patterns(app: Synthesized) -> dict[str, Any]:
    rotation = app.stack.rotation
    deployment = rotation.deployment
    return {
        "secrets": app.stack.resolve(deployment.installation_secrets_arn(app.stack)),
        "api_keys": app.stack.resolve(deployment.api_key_secrets_arn(app.stack)),
        "users": app.stack.resolve(deployment.users_arn(app.stack)),
        "tag": {
            "StringEquals": {
                "secretsmanager:ResourceTag/ses-smtp-rotator:deployment": "SesSmtpRotator"
            }
        },
    }


def test_function_role_grants_exactly_what_the_rotation_calls(fleet_app: Synthesized) -> None:
    rotation = fleet_app.stack.rotation
    role_id = fleet_app.logical_id(rotation.role)
    log_group_id = fleet_app.logical_id(rotation.log_group)
    patterns = deployment_patterns(fleet_app)
    user_arn = "arn:aws:iam::111122223333:user/mail/kion-gov-smtp"
    key_actions = [
        "iam:CreateAccessKey",
        "iam:DeleteAccessKey",
        "iam:GetAccessKeyLastUsed",
        "iam:ListAccessKeys",
        "iam:UpdateAccessKey",
    ]
    installation_secret_actions = [
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:ListSecretVersionIds",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
    ]
    want = [
        expected(["xray:PutTelemetryRecords", "xray:PutTraceSegments"], ["*"]),
        expected(["logs:CreateLogStream", "logs:PutLogEvents"], [arn_of(log_group_id)]),
        # Every installation secret of the deployment, by name prefix and tag: one statement.
        expected(installation_secret_actions, [patterns["secrets"]], patterns["tag"]),
        # Retired-key records only: the deployment tag that scopes every grant stays untouched.
        expected(
            ["secretsmanager:TagResource", "secretsmanager:UntagResource"],
            [patterns["secrets"]],
            {**patterns["tag"], **RETIREMENT_TAG_CONDITION},
        ),
        expected(["secretsmanager:GetSecretValue"], [patterns["api_keys"]], patterns["tag"]),
        expected(["secretsmanager:GetSecretValue"], [EXISTING_API_KEY_ARN]),
        expected(key_actions, [patterns["users"]]),
        expected(key_actions, [user_arn]),
        # The notices (to the alert topic here: no notifyTopicArn) and the product's events.
        expected(["sns:Publish"], [EXISTING_TOPIC_ARN]),
        expected(
            ["events:PutEvents"],
            ["arn:aws:events:us-east-1:111122223333:event-bus/default"],
            {"StringEquals": {"events:source": "ses-smtp-rotator"}},
        ),
        expected(
            ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
            [KMS_KEY_ARN],
            {
                "StringEquals": {
                    "kms:ViaService": {
                        "Fn::Join": [
                            "",
                            ["secretsmanager.us-east-1.", {"Ref": "AWS::URLSuffix"}],
                        ]
                    }
                }
            },
        ),
    ]
    statements = statements_of(fleet_app, role_id)
    assert all(statement["Effect"] == "Allow" for statement in statements)
    assert normalized(statements) == normalized(want)
    assert "ses-smtp-rotator/SesSmtpRotator/smtp/*" in json.dumps(patterns["secrets"])
    assert "user/ses-smtp-rotator/SesSmtpRotator/*" in json.dumps(patterns["users"])


def test_settings_writer_may_only_read_write_and_relabel_the_installation_secrets(
    fleet_app: Synthesized,
) -> None:
    patterns = deployment_patterns(fleet_app)
    writer = fleet_app.stack.rotation.node.find_child("SettingsWriter")
    statements = statements_of(fleet_app, fleet_app.logical_id(writer.role))
    granted = normalized(statements)
    assert (
        "secretsmanager:PutSecretValue",
        json.dumps(patterns["secrets"], sort_keys=True),
        json.dumps(patterns["tag"], sort_keys=True),
    ) in granted
    actions = {action for action, _, _ in granted}
    assert actions == {
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",  # to take a finished rotation's AWSPENDING off
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:GenerateDataKey",
    }


def test_only_xray_is_granted_on_every_resource(
    default_app: Synthesized, fleet_app: Synthesized
) -> None:
    for app in (default_app, fleet_app):
        for statement in statements_of(app, app.logical_id(app.stack.rotation.role)):
            if "*" in as_list(statement["Resource"]):
                assert sorted(as_list(statement["Action"])) == [
                    "xray:PutTelemetryRecords",
                    "xray:PutTraceSegments",
                ]


def test_no_action_wildcards_anywhere(all_apps: dict[str, Synthesized]) -> None:
    for name, app in all_apps.items():
        for policy in app.resources("AWS::IAM::Policy").values():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                for action in as_list(statement["Action"]):
                    assert "*" not in action, f"{name}: {action}"


def test_scheduler_role_may_rotate_these_secrets_and_invoke_this_function_only(
    fleet_app: Synthesized,
) -> None:
    rotation = fleet_app.stack.rotation
    patterns = deployment_patterns(fleet_app)
    role_id = fleet_app.logical_id(rotation.scheduler_role)
    function_arn = arn_of(fleet_app.logical_id(rotation.function))
    want = [
        expected(["secretsmanager:RotateSecret"], [patterns["secrets"]], patterns["tag"]),
        expected(["lambda:InvokeFunction"], [function_arn]),
    ]
    statements = statements_of(fleet_app, role_id)
    assert normalized(statements) == normalized(want)


def test_only_the_stack_schedule_group_may_assume_the_scheduler_role(
    default_app: Synthesized,
) -> None:
    rotation = default_app.stack.rotation
    role = default_app.template_json["Resources"][default_app.logical_id(rotation.scheduler_role)]
    group_id = default_app.logical_id(rotation.schedule_group)
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
            "Condition": {
                "StringEquals": {
                    "aws:SourceAccount": {"Ref": "AWS::AccountId"},
                    "aws:SourceArn": arn_of(group_id),
                }
            },
        }
    ]
    assert "ManagedPolicyArns" not in role["Properties"]
