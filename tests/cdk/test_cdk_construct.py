"""``SesSmtpRotation`` as a team would use it in its own CDK app: typed props, checks, grants."""

from __future__ import annotations

import re

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template
from synthesized_app import as_list

from ses_smtp_rotator.cdk import (
    KionInstallation,
    RotationSchedule,
    SesSmtpRotation,
    SettingsError,
    load_settings,
)
from ses_smtp_rotator.cdk.context_settings import ROTATION_KEYS
from ses_smtp_rotator.cdk.function import required_timeout
from ses_smtp_rotator.cdk.installation import PropertyError

PROD = KionInstallation(name="prod", kion_url="https://kion.example.com", ses_region="us-east-1")
PROD_SETTING = {"name": "prod", "kionUrl": "https://kion.example.com", "sesRegion": "us-east-1"}
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
        ({"memory_size": 64}, "memory_size 64 is outside 128..10240"),
        ({"create_ses_smtp_endpoint": True}, "create_ses_smtp_endpoint True needs a VPC"),
        ({"create_sqs_endpoint": True}, "create_sqs_endpoint True needs a VPC"),
    ],
)
def test_construct_refuses_props_that_cannot_work(props: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rotation_in_new_stack(code=INLINE_CODE, **props)


VPC_CONTEXT = {"vpcId": "vpc-0123456789abcdef0", "subnetIds": ["subnet-0123456789abcdef0"]}


@pytest.mark.parametrize(
    ("props", "context", "refusal"),
    [
        (
            {"log_level": "VERBOSE"},
            {"logLevel": "VERBOSE"},
            "'VERBOSE' is not a choice here. Fix: use one of DEBUG, INFO, WARNING, ERROR",
        ),
        (
            {"timeout": cdk.Duration.seconds(150)},
            {"functionTimeoutSeconds": 150},
            f"150 does not cover setSecret at its slowest ({required_timeout(120)[1]} s with "
            "ses_accept_timeout 120 and the Kion and SMTP timeouts and retries), so a step could "
            f"be cut off mid-way. Fix: raise it to {required_timeout(120)[1]} or more, or lower "
            "ses_accept_timeout",
        ),
        (
            {"timeout": cdk.Duration.seconds(900), "ses_accept_timeout": cdk.Duration.seconds(500)},
            {"functionTimeoutSeconds": 900, "sesAcceptTimeoutSeconds": 500},
            f"900 does not cover setSecret at its slowest ({required_timeout(500)[1]} s with "
            "ses_accept_timeout 500 and the Kion and SMTP timeouts and retries), so a step could "
            "be cut off mid-way. Fix: lower ses_accept_timeout to "
            f"{500 - (required_timeout(500)[1] - 900)} or less",
        ),
        (
            {"timeout": cdk.Duration.minutes(20)},
            {"functionTimeoutSeconds": 1200},
            "1200 is outside 1..900. Fix: use a number in 1..900",
        ),
        (
            {"watch_schedule": "at(2027-01-01T06:00:00)"},
            {"watchSchedule": "at(2027-01-01T06:00:00)"},
            "'at(2027-01-01T06:00:00)' runs once; the watch must recur. Fix: write a recurring "
            "expression in UTC, e.g. cron(0 6 * * ? *) (daily at 06:00)",
        ),
        (
            {"alarm_email": "ops-team"},
            {"alarmEmail": "ops-team"},
            "'ops-team' is not an e-mail address. Fix: write e.g. ops@example.com",
        ),
        (
            {"https_egress_cidrs": ["10.0.0.0/33"]},
            {"vpc": {**VPC_CONTEXT, "httpsEgressCidrs": ["10.0.0.0/33"]}},
            "'10.0.0.0/33' is not an IPv4 CIDR block. Fix: write e.g. 10.0.0.0/16",
        ),
    ],
)
def test_construct_and_cdk_json_refuse_a_setting_in_the_same_words(
    props: dict, context: dict, refusal: str
) -> None:
    """A team using the construct reads the problem and fix cdk.json's users read, with the
    construct's keyword where cdk.json names its key."""
    stack = cdk.Stack(cdk.App(), "TeamStack", env=cdk.Environment(region="us-east-1"))
    if "vpc" in context:
        props = {**props, "vpc": ec2.Vpc(stack, "Vpc")}
    with pytest.raises(PropertyError) as by_construct:
        SesSmtpRotation(stack, "Rotation", installations=[PROD], code=INLINE_CODE, **props)
    with pytest.raises(SettingsError) as by_cdk_json:
        load_settings({"installations": [PROD_SETTING], **context})

    keys = {prop: key for key, prop in ROTATION_KEYS.items()}
    construct_words = str(by_construct.value)
    cdk_json_words = str(by_cdk_json.value)
    assert refusal in construct_words
    (prop,) = (prop for prop in keys if construct_words.startswith(f"SesSmtpRotation: {prop} "))
    in_cdk_json_words = re.sub(r"\b(\w+)\b", lambda word: keys.get(word[1], word[1]), refusal)
    assert cdk_json_words == f"Setting {keys[prop]}: {in_cdk_json_words}."


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
