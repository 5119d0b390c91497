"""Per installation: the secrets, the SES SMTP user, the settings, the rotation and its schedule."""

from __future__ import annotations

import json
from typing import Any

from synthesized_app import EXISTING_API_KEY_ARN, KMS_KEY_ARN, PEM, Synthesized, only


def resource_of(app: Synthesized, construct: Any) -> dict[str, Any]:
    logical_id = app.logical_id(construct)
    return only(
        [
            t["Resources"][logical_id]
            for t in app.templates.values()
            if logical_id in t.get("Resources", {})
        ],
        logical_id,
    )


def settings_of(app: Synthesized, name: str) -> dict[str, Any]:
    """The settings the custom resource writes, with references shown as {"Ref": id}."""
    resources = app.stack.rotation.installations[name]
    text = resource_of(app, resources.settings)["Properties"]["Settings"]
    if isinstance(text, str):
        return json.loads(text)
    placeholders = {}
    joined = ""
    for index, part in enumerate(text["Fn::Join"][1]):
        if isinstance(part, str):
            joined += part
        else:
            placeholders[f"__ref{index}__"] = part
            joined += f"__ref{index}__"
    return {key: placeholders.get(item, item) for key, item in json.loads(joined).items()}


def test_settings_are_written_by_a_custom_resource_and_hold_no_credential(
    default_app: Synthesized,
) -> None:
    resources = default_app.stack.rotation.installations["prod"]
    assert settings_of(default_app, "prod") == {
        "ses_region": "us-east-1",
        "iam_user_name": {"Ref": default_app.logical_id(resources.smtp_user)},
        "kion_url": "https://kion.example.com",
        "kion_api_key_secret_id": {"Ref": default_app.logical_id(resources.api_key_secret)},
        "smtp_host": "email-smtp.us-east-1.amazonaws.com",
        "smtp_port": 587,
        "send_path_check": True,
        "iam_user_dedicated": True,
    }
    custom = resource_of(default_app, resources.settings)
    assert custom["Type"] == "Custom::InstallationSettings"
    assert custom["Properties"]["SecretId"] == {"Ref": default_app.logical_id(resources.secret)}


def test_the_secret_value_in_the_template_never_changes_with_the_settings(
    default_app: Synthesized, fleet_app: Synthesized
) -> None:
    for app in (default_app, fleet_app):
        for resources in app.stack.rotation.installations.values():
            secret = resource_of(app, resources.secret)["Properties"]
            assert secret["SecretString"] == "{}"


def test_existing_user_and_api_key_secret_are_named_in_the_settings(
    fleet_app: Synthesized,
) -> None:
    assert settings_of(fleet_app, "gov") == {
        "ses_region": "us-west-2",
        "iam_user_name": "kion-gov-smtp",
        "kion_url": "https://kion.gov.example.com",
        "kion_api_key_secret_id": EXISTING_API_KEY_ARN,
        "smtp_host": "email-smtp-fips.us-west-2.amazonaws.com",
        "smtp_port": 2587,
        "send_path_check": True,
        "iam_user_dedicated": False,
        "kion_ca_bundle": PEM,
    }


def test_secrets_are_named_under_the_deployment_prefix(fleet_app: Synthesized) -> None:
    prod = fleet_app.stack.rotation.installations["prod"]
    assert resource_of(fleet_app, prod.secret)["Properties"]["Name"] == (
        "ses-smtp-rotator/SesSmtpRotator/smtp/prod"
    )
    assert resource_of(fleet_app, prod.api_key_secret)["Properties"]["Name"] == (
        "ses-smtp-rotator/SesSmtpRotator/kion-api-key/prod"
    )


def test_kion_api_key_secret_is_created_empty_unless_an_existing_one_is_named(
    default_app: Synthesized, fleet_app: Synthesized
) -> None:
    prod = default_app.stack.rotation.installations["prod"]
    api_key_secret = resource_of(default_app, prod.api_key_secret)["Properties"]
    assert json.loads(api_key_secret["SecretString"]) == {"api_key": ""}
    assert "GenerateSecretString" not in api_key_secret
    # Fleet: prod's is created, gov's is imported: two installation secrets plus one API key.
    assert len(fleet_app.resources("AWS::SecretsManager::Secret")) == 3


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
            assert resource["DeletionPolicy"] == "RetainExceptOnCreate"


def test_smtp_users_are_kept_even_when_the_rest_is_destroyed(fleet_app: Synthesized) -> None:
    for secret in fleet_app.resources("AWS::SecretsManager::Secret").values():
        assert secret["DeletionPolicy"] == "Delete"
    for user in fleet_app.resources("AWS::IAM::User").values():
        assert user["DeletionPolicy"] == "RetainExceptOnCreate"


def test_created_smtp_user_lives_under_the_deployment_path_and_may_only_send_raw_email(
    default_app: Synthesized,
) -> None:
    user = only(default_app.resources("AWS::IAM::User"), "SMTP user")["Properties"]
    assert user["Path"] == "/ses-smtp-rotator/SesSmtpRotator/"
    (policy,) = user["Policies"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Action"] == "ses:SendRawEmail"
    assert "Condition" not in statement
    rendered = json.dumps(statement["Resource"])
    assert ":ses:us-east-1:" in rendered
    assert "identity/*" in rendered
    assert "configuration-set/*" in rendered
    # No policy resource per installation.
    assert not [
        p for p in default_app.resources("AWS::IAM::Policy").values() if "Users" in p["Properties"]
    ]


def test_created_smtp_user_can_be_limited_to_the_from_address(fleet_app: Synthesized) -> None:
    (user,) = fleet_app.resources("AWS::IAM::User").values()
    (statement,) = user["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert statement["Condition"] == {"StringLike": {"ses:FromAddress": "kion@example.com"}}


def test_rotation_is_attached_with_no_native_schedule_and_no_rotation_on_deploy(
    fleet_app: Synthesized,
) -> None:
    for resources in fleet_app.stack.rotation.installations.values():
        rotation = resource_of(fleet_app, resources.rotation)
        assert set(rotation["Properties"]) == {
            "SecretId",
            "RotationLambdaARN",
            "RotateImmediatelyOnUpdate",
        }
        assert rotation["Properties"]["RotateImmediatelyOnUpdate"] is False
        # Attaching rotation tests the configuration: the settings must be in first.
        assert fleet_app.logical_id(resources.settings) in rotation["DependsOn"]


def test_installation_stacks_wait_for_the_invoke_permission_and_the_roles(
    default_app: Synthesized,
) -> None:
    rotation = default_app.stack.rotation
    for nested in rotation.installation_stacks:
        resource = default_app.template_json["Resources"][
            default_app.logical_id(nested.nested_stack_resource)
        ]
        depends_on = set(resource["DependsOn"])
        assert default_app.logical_id(rotation.invoke_permission) in depends_on
        assert any("RotationFunctionRoleDefaultPolicy" in d for d in depends_on)


def rotation_schedules(app: Synthesized) -> dict[str, dict]:
    """The rotation schedules (every schedule but the daily watch's)."""
    watch = app.logical_id(app.stack.rotation.watch.schedule)
    return {k: v for k, v in app.resources("AWS::Scheduler::Schedule").items() if k != watch}


def test_each_installation_has_one_scheduler_schedule_that_calls_rotate_secret(
    fleet_app: Synthesized,
) -> None:
    schedules = rotation_schedules(fleet_app)
    assert len(schedules) == 2
    for resources in fleet_app.stack.rotation.installations.values():
        target = resource_of(fleet_app, resources.schedule)["Properties"]["Target"]
        assert (
            target["Arn"]["Fn::Join"][1][-1] == ":scheduler:::aws-sdk:secretsmanager:rotateSecret"
        )
        assert {"Ref": fleet_app.logical_id(resources.secret)} in target["Input"]["Fn::Join"][1]
        assert target["RetryPolicy"]["MaximumRetryAttempts"] == 0


def test_default_schedule_is_the_first_tuesday_of_the_month_in_a_flexible_window(
    default_app: Synthesized,
) -> None:
    schedule = only(rotation_schedules(default_app), "schedule")["Properties"]
    assert schedule["ScheduleExpression"] == "cron(0 14 ? * TUE#1 *)"
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}
    assert schedule["State"] == "ENABLED"


def test_schedule_follows_the_settings(fleet_app: Synthesized) -> None:
    for schedule in rotation_schedules(fleet_app).values():
        properties = schedule["Properties"]
        assert properties["ScheduleExpression"] == "rate(30 days)"
        assert properties["ScheduleExpressionTimezone"] == "America/New_York"
        assert properties["FlexibleTimeWindow"] == {"Mode": "OFF"}
        assert properties["State"] == "DISABLED"


def test_resources_are_tagged_with_their_installation_and_deployment(
    fleet_app: Synthesized,
) -> None:
    for name, resources in fleet_app.stack.rotation.installations.items():
        tags = {
            tag["Key"]: tag["Value"]
            for tag in resource_of(fleet_app, resources.secret)["Properties"]["Tags"]
        }
        assert tags == {
            "ses-smtp-rotator:installation": name,
            "ses-smtp-rotator:deployment": "SesSmtpRotator",
        }
