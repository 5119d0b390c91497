"""Per installation: the secrets, the SES SMTP user, the rotation and its one schedule."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match
from synthesized_app import EXISTING_API_KEY_ARN, KMS_KEY_ARN, PEM, Synthesized, only


def installation_secret_value(app: Synthesized, name: str) -> dict[str, Any]:
    """The installation secret's initial value, with references shown as {"Ref": id}."""
    secret_id = app.logical_id(app.stack.rotation.installations[name].secret)
    secret_string = app.template_json["Resources"][secret_id]["Properties"]["SecretString"]
    if isinstance(secret_string, str):
        return json.loads(secret_string)
    parts = secret_string["Fn::Join"][1]
    placeholders = {}
    text = ""
    for index, part in enumerate(parts):
        if isinstance(part, str):
            text += part
        else:
            placeholder = f"__ref{index}__"
            placeholders[placeholder] = part
            text += placeholder
    value = json.loads(text)
    return {key: placeholders.get(item, item) for key, item in value.items()}


def test_installation_secret_has_the_settings_and_an_empty_credential(
    default_app: Synthesized,
) -> None:
    resources = default_app.stack.rotation.installations["prod"]
    assert installation_secret_value(default_app, "prod") == {
        "username": "",
        "password": "",
        "ses_region": "us-east-1",
        "iam_user_name": {"Ref": default_app.logical_id(resources.smtp_user)},
        "kion_url": "https://kion.example.com",
        "kion_api_key_secret_id": {"Ref": default_app.logical_id(resources.api_key_secret)},
        "smtp_host": "email-smtp.us-east-1.amazonaws.com",
        "smtp_port": 587,
    }


def test_existing_user_and_api_key_secret_are_named_in_the_installation_secret(
    fleet_app: Synthesized,
) -> None:
    assert installation_secret_value(fleet_app, "gov") == {
        "username": "",
        "password": "",
        "ses_region": "us-west-2",
        "iam_user_name": "kion-gov-smtp",
        "kion_url": "https://kion.gov.example.com",
        "kion_api_key_secret_id": EXISTING_API_KEY_ARN,
        "smtp_host": "email-smtp-fips.us-west-2.amazonaws.com",
        "smtp_port": 2587,
        "kion_ca_bundle": PEM,
    }


def test_kion_api_key_secret_is_created_empty_unless_an_existing_one_is_named(
    default_app: Synthesized, fleet_app: Synthesized
) -> None:
    api_key_id = default_app.logical_id(
        default_app.stack.rotation.installations["prod"].api_key_secret
    )
    api_key_secret = default_app.template_json["Resources"][api_key_id]["Properties"]
    assert json.loads(api_key_secret["SecretString"]) == {"api_key": ""}
    assert "GenerateSecretString" not in api_key_secret
    # Fleet: prod's is created, gov's is imported: two installation secrets plus one API key.
    fleet_app.template.resource_count_is("AWS::SecretsManager::Secret", 3)


def test_secrets_use_the_customer_managed_key_when_one_is_set(
    default_app: Synthesized, fleet_app: Synthesized
) -> None:
    for secret in fleet_app.resources("AWS::SecretsManager::Secret").values():
        assert secret["Properties"]["KmsKeyId"] == KMS_KEY_ARN
    for secret in default_app.resources("AWS::SecretsManager::Secret").values():
        assert "KmsKeyId" not in secret["Properties"]


def test_secrets_and_users_outlive_the_stack_by_default(default_app: Synthesized) -> None:
    for resource_type in ("AWS::SecretsManager::Secret", "AWS::IAM::User"):
        for resource in default_app.resources(resource_type).values():
            assert resource["DeletionPolicy"] == "Retain"
            assert resource["UpdateReplacePolicy"] == "Retain"


def test_smtp_users_are_kept_even_when_the_rest_is_destroyed(fleet_app: Synthesized) -> None:
    # Kion keeps sending with the user's key; CloudFormation cannot delete a user with keys.
    for user in fleet_app.resources("AWS::IAM::User").values():
        assert user["DeletionPolicy"] == "Retain"
    for secret in fleet_app.resources("AWS::SecretsManager::Secret").values():
        assert secret["DeletionPolicy"] == "Delete"


def test_created_smtp_user_may_only_send_raw_email_in_its_ses_region(
    default_app: Synthesized,
) -> None:
    user = only(default_app.resources("AWS::IAM::User"), "SMTP user")
    assert user["Properties"].get("Path") == "/ses-smtp-rotator/"
    assert "Policies" not in user["Properties"]
    assert "ManagedPolicyArns" not in user["Properties"]
    user_id = default_app.logical_id(default_app.stack.rotation.installations["prod"].smtp_user)
    policy = only(
        [
            p
            for p in default_app.resources("AWS::IAM::Policy").values()
            if p["Properties"].get("Users") == [{"Ref": user_id}]
        ],
        "SMTP user policy",
    )
    statement = only(policy["Properties"]["PolicyDocument"]["Statement"], "statement")
    assert statement["Action"] == "ses:SendRawEmail"
    assert statement["Effect"] == "Allow"
    assert "Condition" not in statement
    ses_prefix = ["arn:", {"Ref": "AWS::Partition"}, ":ses:us-east-1:", {"Ref": "AWS::AccountId"}]
    assert sorted(json.dumps(r) for r in statement["Resource"]) == sorted(
        json.dumps({"Fn::Join": ["", [*ses_prefix, suffix]]})
        for suffix in (":configuration-set/*", ":identity/*")
    )


def test_created_smtp_user_can_be_limited_to_the_from_address(fleet_app: Synthesized) -> None:
    fleet_app.template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": [
                    Match.object_like(
                        {
                            "Action": "ses:SendRawEmail",
                            "Condition": {"StringLike": {"ses:FromAddress": "kion@example.com"}},
                        }
                    )
                ]
            }
        },
    )
    # gov names an existing user: the stack creates only prod's.
    fleet_app.template.resource_count_is("AWS::IAM::User", 1)


def test_rotation_is_attached_with_no_native_schedule_and_no_rotation_on_deploy(
    fleet_app: Synthesized,
) -> None:
    function_id = fleet_app.logical_id(fleet_app.stack.rotation.function)
    rotations = fleet_app.resources("AWS::SecretsManager::RotationSchedule")
    secret_ids = {
        fleet_app.logical_id(resources.secret)
        for resources in fleet_app.stack.rotation.installations.values()
    }
    assert {r["Properties"]["SecretId"]["Ref"] for r in rotations.values()} == secret_ids
    for rotation in rotations.values():
        assert rotation["Properties"] == {
            "SecretId": rotation["Properties"]["SecretId"],
            "RotationLambdaARN": {"Fn::GetAtt": [function_id, "Arn"]},
            "RotateImmediatelyOnUpdate": False,
        }
        assert "RotationRules" not in rotation["Properties"]
        assert "HostedRotationLambda" not in rotation["Properties"]


def test_rotation_waits_for_the_invoke_permission(default_app: Synthesized) -> None:
    rotation = only(default_app.resources("AWS::SecretsManager::RotationSchedule"), "rotation")
    permission_id = only(list(default_app.resources("AWS::Lambda::Permission")), "permission")
    assert permission_id in rotation["DependsOn"]


def test_each_installation_has_one_scheduler_schedule_that_calls_rotate_secret(
    fleet_app: Synthesized,
) -> None:
    schedules = fleet_app.resources("AWS::Scheduler::Schedule")
    assert len(schedules) == 2
    targets = {}
    for schedule in schedules.values():
        target = schedule["Properties"]["Target"]
        assert target["Arn"] == {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    ":scheduler:::aws-sdk:secretsmanager:rotateSecret",
                ],
            ]
        }
        input_parts = target["Input"]["Fn::Join"][1]
        assert input_parts[0] == '{"SecretId":"'
        assert input_parts[2] == '"}'
        targets[input_parts[1]["Ref"]] = schedule
    assert set(targets) == {
        fleet_app.logical_id(resources.secret)
        for resources in fleet_app.stack.rotation.installations.values()
    }


def test_scheduler_does_not_retry_a_rotation(fleet_app: Synthesized) -> None:
    for schedule in fleet_app.resources("AWS::Scheduler::Schedule").values():
        assert schedule["Properties"]["Target"]["RetryPolicy"]["MaximumRetryAttempts"] == 0


def test_default_schedule_is_the_first_tuesday_of_the_month_in_a_flexible_window(
    default_app: Synthesized,
) -> None:
    default_app.template.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "ScheduleExpression": "cron(0 14 ? * TUE#1 *)",
            "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15},
            "State": "ENABLED",
        },
    )


def test_schedule_follows_the_settings(fleet_app: Synthesized) -> None:
    for schedule in fleet_app.resources("AWS::Scheduler::Schedule").values():
        properties = schedule["Properties"]
        assert properties["ScheduleExpression"] == "rate(30 days)"
        assert properties["ScheduleExpressionTimezone"] == "America/New_York"
        assert properties["FlexibleTimeWindow"] == {"Mode": "OFF"}
        assert properties["State"] == "DISABLED"


def test_schedules_live_in_the_stack_schedule_group(fleet_app: Synthesized) -> None:
    group_id = only(list(fleet_app.resources("AWS::Scheduler::ScheduleGroup")), "schedule group")
    group_name = fleet_app.stack.resolve(
        fleet_app.stack.rotation.schedule_group.schedule_group_name
    )
    for schedule in fleet_app.resources("AWS::Scheduler::Schedule").values():
        assert schedule["Properties"]["GroupName"] in (group_name, {"Ref": group_id})


def test_resources_are_tagged_with_their_installation(fleet_app: Synthesized) -> None:
    for name, resources in fleet_app.stack.rotation.installations.items():
        secret = fleet_app.template_json["Resources"][fleet_app.logical_id(resources.secret)]
        assert {"Key": "ses-smtp-rotator:installation", "Value": name} in secret["Properties"][
            "Tags"
        ]
