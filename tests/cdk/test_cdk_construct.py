"""``SesSmtpRotation`` as a team would use it in its own CDK app: typed props, checks, grants."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template
from synthesized_app import as_list

from ses_smtp_rotator.cdk import KionInstallation, RotationSchedule, SesSmtpRotation
from ses_smtp_rotator.cdk.function import required_timeout

PROD = KionInstallation(name="prod", kion_url="https://kion.example.com", ses_region="us-east-1")
INLINE_CODE = lambda_.Code.from_inline("def lambda_handler(event, context):\n    return None\n")


def rotation_in_new_stack(**props: object) -> tuple[cdk.Stack, SesSmtpRotation]:
    stack = cdk.Stack(cdk.App(), "TeamStack", env=cdk.Environment(region="eu-central-1"))
    rotation = SesSmtpRotation(stack, "SmtpRotation", **{"installations": [PROD], **props})
    return stack, rotation


def test_construct_drops_into_another_stack_and_grants_on_demand_rotation() -> None:
    stack, rotation = rotation_in_new_stack(
        code=INLINE_CODE, schedule=RotationSchedule(expression="rate(14 days)")
    )
    operator = iam.Role(stack, "Operator", assumed_by=iam.AccountRootPrincipal())
    rotation.grant_rotate(operator)
    template = Template.from_stack(stack)

    (nested,) = rotation.installation_stacks
    Template.from_stack(nested).has_resource_properties(
        "AWS::Scheduler::Schedule", {"ScheduleExpression": "rate(14 days)"}
    )
    operator_id = stack.resolve(stack.get_logical_id(operator.node.default_child))
    policies = template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": operator_id}]}}
    )
    statements = [
        s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = sorted(action for s in statements for action in as_list(s["Action"]))
    assert actions == ["lambda:InvokeFunction", "secretsmanager:RotateSecret"]
    rotate = next(s for s in statements if s["Action"] == "secretsmanager:RotateSecret")
    assert rotate["Resource"] == stack.resolve(rotation.deployment.installation_secrets_arn(stack))
    assert "secret:ses-smtp-rotator/TeamStack/smtp/*" in str(rotate["Resource"])
    assert rotate["Condition"] == rotation.deployment.tag_condition()
    functions = {
        f["Properties"]["Handler"]: f["Properties"]["Code"]
        for f in template.find_resources("AWS::Lambda::Function").values()
    }
    # Code given for the rotation replaces its code only; the settings writer keeps its own.
    assert "ZipFile" in functions["ses_smtp_rotator.functions.smtp_rotation.handler.lambda_handler"]
    assert (
        "S3Key"
        in functions["ses_smtp_rotator.functions.installation_settings.handler.lambda_handler"]
    )
    assert rotation.topic is not None
    assert rotation.function is not None
    assert set(rotation.installations) == {"prod"}


def test_layer_arn_can_be_given_explicitly() -> None:
    own_layer = "arn:aws:lambda:eu-central-1:111122223333:layer:powertools-copy:3"
    stack, _ = rotation_in_new_stack(code=INLINE_CODE, powertools_layer_arn=own_layer)
    Template.from_stack(stack).has_resource_properties(
        "AWS::Lambda::Function",
        {"Layers": [own_layer], "Runtime": Match.string_like_regexp("^python3")},
    )


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"installations": []}, "at least one Kion installation"),
        ({"installations": [PROD, PROD]}, "is already the name of installation prod"),
        (
            {"timeout": cdk.Duration.seconds(150)},
            rf"does not cover setSecret at its slowest \({required_timeout(120)[1]} s.*raise "
            rf"timeout to {required_timeout(120)[1]}",
        ),
        ({"log_level": "VERBOSE"}, "log_level"),
        ({"create_ses_smtp_endpoint": True}, "VPC endpoints need a VPC"),
    ],
)
def test_construct_refuses_props_that_cannot_work(props: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rotation_in_new_stack(code=INLINE_CODE, **props)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "prod east"}, "letters, digits or hyphens"),
        ({"kion_url": "http://kion.example.com"}, "https://"),
        ({"ses_region": "us-east"}, "region name"),
        ({"smtp_port": 70000}, "not a port"),
        ({"iam_user_name": "mail", "from_address": "kion@example.com"}, "Remove one of them"),
        (
            {"kion_api_key_secret_arn": "arn:aws:secretsmanager:us-east-1:111122223333:secret:k"},
            "complete ARN",
        ),
        ({"iam_user_name": "mail", "iam_user_path": "mail"}, "start and end with '/'"),
    ],
)
def test_installation_refuses_settings_that_cannot_work(fields: dict, message: str) -> None:
    values = {"name": "prod", "kion_url": "https://kion.example.com", "ses_region": "us-east-1"}
    with pytest.raises(ValueError, match=message):
        KionInstallation(**{**values, **fields})


def test_schedule_refuses_an_expression_scheduler_does_not_know() -> None:
    with pytest.raises(ValueError, match="EventBridge Scheduler expression"):
        RotationSchedule(expression="0 14 * * 2")


@pytest.mark.parametrize("region", ["eu-central-1", None])
def test_construct_refuses_two_installations_that_name_one_iam_user(region: str | None) -> None:
    """Used directly, the construct refuses what cdk.json's checks refuse, also in a stack
    without a region."""
    shared = {"kion_url": "https://kion.example.com", "iam_user_name": "kion-smtp"}
    installations = [
        KionInstallation(name="blue", ses_region="eu-central-1", **shared),
        KionInstallation(name="green", ses_region="eu-central-1", **shared),
    ]
    stack = cdk.Stack(cdk.App(), "TeamStack", env=cdk.Environment(region=region))
    with pytest.raises(ValueError, match="kion-smtp") as refused:
        SesSmtpRotation(stack, "SmtpRotation", installations=installations, code=INLINE_CODE)
    assert "green" in str(refused.value)
