"""cdk.json settings: the shipped file and the deploy guide's examples load and synthesize, defaults
hold, and a wrong setting is refused with its cdk.json key, its value and the fix."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import trustme
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_logs as logs
from synthesized_app import PROJECT_ROOT, cdk_json_context, synthesize

from ses_smtp_rotator.cdk import SettingsError, load_settings
from ses_smtp_rotator.cdk.function import required_timeout

PROD = {"name": "prod", "kionUrl": "https://kion.example.com", "sesRegion": "us-east-1"}
MINIMAL = {"installations": [PROD]}
DEPLOY_GUIDE = (PROJECT_ROOT / "docs" / "deploying.md").read_text()
VPC_WITH_SES_ENDPOINT = {
    "vpcId": "vpc-0123456789abcdef0",
    "subnetIds": ["subnet-0aaa1111"],
    "createSesSmtpEndpoint": True,
}


def load(context: dict[str, Any]) -> Any:
    return load_settings(context.get)


def installation(**changes: Any) -> dict[str, Any]:
    """cdk.json's context with one installation, ``prod`` with ``changes``."""
    return {**cdk_json_context(), "installations": [{**PROD, **changes}]}


def refusal(context: dict[str, Any]) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(context)
    return str(caught.value)


def test_shipped_cdk_json_is_a_working_example() -> None:
    settings = load_settings(cdk_json_context())
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
    assert settings.function_timeout.to_seconds() == 900
    assert settings.removal_policy == RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE
    assert settings.previous_key_grace.to_days() == 7
    installation = settings.installations[0]
    assert installation.resolved_smtp_host == "email-smtp.us-east-1.amazonaws.com"
    assert installation.smtp_port == 587
    assert installation.iam_user_name is None
    assert installation.kion_api_key_secret_arn is None
    assert installation.send_path_check is True


def test_a_grace_window_of_0_days_is_taken() -> None:
    settings = load({**MINIMAL, "previousKeyGraceDays": 0})
    assert settings.previous_key_grace.to_days() == 0


def test_send_path_check_is_read_per_installation() -> None:
    settings = load({"installations": [PROD, {**PROD, "name": "quiet", "sendPathCheck": False}]})
    assert [i.send_path_check for i in settings.installations] == [True, False]


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


def test_a_ca_bundle_that_parses_is_taken() -> None:
    pem = trustme.CA().cert_pem.bytes().decode()
    settings = load_settings(installation(kionCaBundle=pem))
    assert settings.installations[0].kion_ca_bundle == pem


@pytest.mark.parametrize(
    ("changes", "vpc"),
    [
        ({"smtpPort": 25}, VPC_WITH_SES_ENDPOINT),
        (
            {
                "smtpPort": 25,
                "smtpHost": "vpce-0a1b2c3d4e5f-abcd1234.email-smtp.us-east-1.vpce.amazonaws.com",
            },
            None,
        ),
    ],
)
def test_port_25_is_taken_through_a_vpc_endpoint(changes: dict[str, Any], vpc: Any) -> None:
    settings = load_settings({**installation(**changes), "vpc": vpc})
    assert settings.installations[0].smtp_port == 25


# (context change, the key the message names, the value it shows, words of the problem or fix)
REFUSED = [
    ({"installations": []}, "installations", "[]", "list at least one"),
    ({"installations": [{"name": "prod"}]}, "installations[0].kionUrl", "missing", "add it"),
    ({"region": "us-east-9"}, "region", "'us-east-9'", "Lambda, Secrets Manager"),
    ({"region": "useast1"}, "region", "'useast1'", "did you mean us-east-1?"),
    ({"account": "1234"}, "account", "'1234'", "12-digit"),
    ({"previousKeyGraceDays": -1}, "previousKeyGraceDays", "-1", "use a number in 0..365"),
    ({"previousKeyGraceDays": "7"}, "previousKeyGraceDays", "'7'", "without quotes"),
    ({"stackName": "rotator_1"}, "stackName", "'rotator_1'", "CloudFormation stack name"),
    ({"alarmEmail": "ops"}, "alarmEmail", "'ops'", "not an e-mail address"),
    ({"alarmTopicArn": "platform-alerts"}, "alarmTopicArn", "'platform-alerts'", "sns"),
    (
        {"alarmTopicArn": "arn:aws-us-gov:sns:us-gov-west-1:111122223333:alerts"},
        "alarmTopicArn",
        "'arn:aws-us-gov:sns:us-gov-west-1:111122223333:alerts'",
        "name one in us-east-1",
    ),
    ({"kmsKeyArn": "alias/secrets"}, "kmsKeyArn", "'alias/secrets'", "kms"),
    (
        {"kmsKeyArn": "arn:aws:kms:eu-west-1:111122223333:key/0f1e"},
        "kmsKeyArn",
        "'arn:aws:kms:eu-west-1:111122223333:key/0f1e'",
        "is in eu-west-1",
    ),
    ({"logRetentionDays": 100}, "logRetentionDays", "100", "CloudWatch Logs retention"),
    ({"logLevel": "TRACE"}, "logLevel", "'TRACE'", "DEBUG, INFO, WARNING, ERROR"),
    (
        {"functionTimeoutSeconds": 130},
        "functionTimeoutSeconds",
        "130",
        f"raise it to {required_timeout(120)[1]} or more, or lower sesAcceptTimeoutSeconds",
    ),
    (
        {"sesAcceptTimeoutSeconds": 500, "functionTimeoutSeconds": 900},
        "functionTimeoutSeconds",
        "900",
        f"lower sesAcceptTimeoutSeconds to {500 - (required_timeout(500)[1] - 900)} or less",
    ),
    ({"functionTimeoutSeconds": 1000}, "functionTimeoutSeconds", "1000", r"1..900"),
    ({"removalPolicy": "snapshot"}, "removalPolicy", "'snapshot'", "retain or destroy"),
    ({"vpc": {"vpcId": "vpc-1", "subnetIds": []}}, "vpc.subnetIds", "[]", "list of strings"),
    ({"vpc": {"vpcId": "my-vpc", "subnetIds": ["subnet-1"]}}, "vpc.vpcId", "'my-vpc'", "VPC id"),
    (
        {"vpc": {"vpcId": "vpc-1", "subnetIds": ["subnet-1"], "httpsEgressCidrs": ["any"]}},
        "vpc.httpsEgressCidrs",
        "'any'",
        "IPv4 CIDR",
    ),
    (
        {"rotationSchedule": {"timeZone": "Mars/Olympus"}},
        "rotationSchedule.timeZone",
        "'Mars/Olympus'",
        "IANA",
    ),
    (
        {"rotationSchedule": {"flexibleWindowMinutes": 2000}},
        "rotationSchedule.flexibleWindowMinutes",
        "2000",
        "0..1440",
    ),
    (
        {"rotationSchedule": {"enabled": "yes"}},
        "rotationSchedule.enabled",
        "'yes'",
        "true or false",
    ),
    (
        {"rotationSchedule": {"expresion": "rate(30 days)"}},
        "rotationSchedule.expresion",
        "",
        "did you mean expression?",
    ),
    ({"alarmEmial": "ops@example.com"}, "alarmEmial", "", "did you mean alarmEmail?"),
]
SCHEDULES_REFUSED = [
    ("monthly", "not an EventBridge Scheduler expression"),
    ("cron(0 14 * * * *)", "question mark"),
    ("cron(0 14 ? * ? *)", "question mark"),
    ("cron(0 14 ? * TUE#1)", "6 required, 5 provided"),
    ("cron(0 14 ? * TUE#6 *)", "day-of-week value 'TUE#6'"),
    ("cron(0 14 ? * 9 *)", "day-of-week value '9'"),
    ("cron(0 14 32W * ? *)", "day-of-month value '32W'"),
    ("cron(0 24 ? * TUE *)", "hour value '24'"),
    ("cron(0 14 LW * ? *)", "cannot compute"),
    ("cron(0 14 1 1 ? 2020)", "never fires again"),
    ("rate(1 days)", "unit 'day' for the value 1"),
    ("rate(30 day)", "unit 'days' for the value 30"),
    ("rate(2 weeks)", "not a rate"),
    ("at(2030-01-01T00:00:00)", "runs once"),
]
INSTALLATIONS_REFUSED = [
    ({"smtpport": 587}, "smtpport", "", "did you mean smtpPort?"),
    ({"sesregion": "us-east-1"}, "sesregion", "", "did you mean sesRegion?"),
    ({"name": "prod east"}, "name", "'prod east'", "letters, digits or hyphens"),
    ({"kionUrl": "kion.example.com"}, "kionUrl", "'kion.example.com'", "https://"),
    ({"kionUrl": "http://kion.example.com"}, "kionUrl", "'http://kion.example.com'", "https://"),
    (
        {"kionUrl": "https://kion.example.com/api"},
        "kionUrl",
        "'https://kion.example.com/api'",
        "has the path '/api'",
    ),
    (
        {"kionUrl": "https://kion.example.com/?tenant=1"},
        "kionUrl",
        "'https://kion.example.com/?tenant=1'",
        "query",
    ),
    (
        {"kionUrl": "https://admin:pw@kion.example.com"},
        "kionUrl",
        "'https://admin:pw@kion.example.com'",
        "host",
    ),
    ({"kionUrl": "https://kion.example.com:99999"}, "kionUrl", "'https://kion", "https://"),
    ({"sesRegion": "us-east-9"}, "sesRegion", "'us-east-9'", "region name with Amazon SES"),
    ({"sesRegion": "eu-west-l"}, "sesRegion", "'eu-west-l'", "did you mean eu-west-1?"),
    ({"sesRegion": "cn-north-1"}, "sesRegion", "'cn-north-1'", "region name with Amazon SES"),
    (
        {"sesRegion": "us-gov-west-1"},
        "sesRegion",
        "'us-gov-west-1'",
        "partition aws-us-gov, the stack's region us-east-1 in aws",
    ),
    ({"smtpPort": "587"}, "smtpPort", "'587'", "whole number"),
    ({"smtpPort": 25}, "smtpPort", "25", "blocked for outbound connections from Lambda"),
    (
        {"smtpHost": "https://email-smtp.us-east-1.amazonaws.com"},
        "smtpHost",
        "'https://email-smtp.us-east-1.amazonaws.com'",
        "not a host name",
    ),
    (
        {"smtpHost": "email-smtp.eu-west-1.amazonaws.com"},
        "smtpHost",
        "'email-smtp.eu-west-1.amazonaws.com'",
        "but sesRegion is us-east-1",
    ),
    (
        {"iamUserName": "arn:aws:iam::111122223333:user/kion-smtp"},
        "iamUserName",
        "'arn:aws:iam::111122223333:user/kion-smtp'",
        "not an IAM user name",
    ),
    ({"iamUserName": "mail", "iamUserPath": "mail"}, "iamUserPath", "'mail'", "start and end"),
    (
        {"iamUserName": "mail", "fromAddress": "kion@example.com"},
        "fromAddress",
        "'kion@example.com'",
        "Remove one of them",
    ),
    (
        {"kionApiKeySecretArn": "arn:aws:secretsmanager:us-east-1:111122223333:secret:k"},
        "kionApiKeySecretArn",
        "'arn:aws:secretsmanager:us-east-1:111122223333:secret:k'",
        "6-character suffix",
    ),
    (
        {"kionApiKeySecretArn": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:k-AbCdEf"},
        "kionApiKeySecretArn",
        "'arn:aws:secretsmanager:eu-west-1:111122223333:secret:k-AbCdEf'",
        "replicate the secret to us-east-1",
    ),
    ({"kionCaBundle": "not pem"}, "kionCaBundle", "'not pem'", "PEM"),
    (
        {"kionCaBundle": "-----BEGIN CERTIFICATE-----\nMIIBexample\n-----END CERTIFICATE-----\n"},
        "kionCaBundle",
        "'-----BEGIN CERTIFICATE-----",
        "does not parse as PEM certificates",
    ),
    ({"sendPathCheck": "no"}, "sendPathCheck", "'no'", "true or false"),
    ({"fromAddress": "kion"}, "fromAddress", "'kion'", "not a sender address"),
]


def check_message(message: str, key: str, value: str, words: str) -> None:
    assert message.startswith(f"Setting {key}: {value}"), message
    assert ". Fix: " in message, message
    assert words in message, message


@pytest.mark.parametrize(("change", "key", "value", "words"), REFUSED)
def test_a_wrong_setting_is_named_with_its_value_and_fix(
    change: dict[str, Any], key: str, value: str, words: str
) -> None:
    check_message(refusal({**cdk_json_context(), **change}), key, value, words)


@pytest.mark.parametrize(("expression", "words"), SCHEDULES_REFUSED)
def test_a_schedule_scheduler_would_refuse_stops_synthesis(expression: str, words: str) -> None:
    context = {**cdk_json_context(), "rotationSchedule": {"expression": expression}}
    check_message(refusal(context), "rotationSchedule.expression", repr(expression), words)


@pytest.mark.parametrize(("changes", "key", "value", "words"), INSTALLATIONS_REFUSED)
def test_a_wrong_installation_setting_is_named_as_typed(
    changes: dict[str, Any], key: str, value: str, words: str
) -> None:
    context = cdk_json_context()
    # The third installation is the wrong one: the message must say which.
    context["installations"] = [
        PROD,
        {**PROD, "name": "eu", "sesRegion": "eu-west-1"},
        {**PROD, "name": "third", **changes},
    ]
    check_message(refusal(context), f"installations[2].{key}", value, words)


def test_two_installations_naming_one_iam_user_are_refused() -> None:
    context = cdk_json_context()
    context["installations"] = [
        {**PROD, "iamUserName": "kion-smtp"},
        {**PROD, "name": "eu", "sesRegion": "eu-west-1", "iamUserName": "Kion-SMTP"},
    ]
    message = refusal(context)
    check_message(message, "installations[1].iamUserName", "'Kion-SMTP'", "installation prod")


def test_two_installations_of_one_name_are_refused() -> None:
    context = cdk_json_context()
    context["installations"] = [PROD, {**PROD, "name": "PROD"}]
    check_message(refusal(context), "installations[1].name", "'PROD'", "installation prod")


def test_port_25_needs_the_endpoint_in_the_installations_own_region() -> None:
    context = installation(sesRegion="eu-west-1", smtpPort=25)
    context["vpc"] = VPC_WITH_SES_ENDPOINT  # an endpoint in us-east-1 only
    check_message(refusal(context), "installations[0].smtpPort", "25", "vpc.createSesSmtpEndpoint")


# -- the deploy guide's examples ----------------------------------------------------------


def deploy_guide_installations_example() -> dict[str, Any]:
    """The settings of the deploy guide's example with two installations."""
    block = re.search(r"```json\n(\"installations\": \[.*?)\n```", DEPLOY_GUIDE, flags=re.S)
    assert block, "the deploy guide's deploy example is gone"
    return json.loads("{" + block.group(1) + "}")


def deploy_guide_govcloud_overrides() -> dict[str, Any]:
    """The -c overrides of the deploy guide's GovCloud command."""
    installations = re.search(r"^GOV_INSTALLATIONS='(.*)'$", DEPLOY_GUIDE, flags=re.M)
    command = re.search(r"^make deploy ARGS=\"(.*)\"$", DEPLOY_GUIDE, flags=re.M)
    assert installations, "the deploy guide's GovCloud example is gone"
    assert command, "the deploy guide's GovCloud command is gone"
    overrides = dict(re.findall(r"-c (\w+)=([^\s']+)", command.group(1)))
    assert "-c installations='$GOV_INSTALLATIONS'" in command.group(1)
    overrides["installations"] = installations.group(1)  # as -c passes it: JSON text
    # The deploy guide looks the layer up in the account; any version of that layer synthesizes.
    layer = (
        "arn:aws-us-gov:lambda:us-gov-west-1:165093116878:layer:"
        "AWSLambdaPowertoolsPythonV3-python312-arm64"
    )
    assert f"--layer-name {layer} " in DEPLOY_GUIDE
    overrides["powertoolsLayerArn"] = f"{layer}:1"
    return overrides


def test_the_deploy_guide_example_synthesizes_as_shown() -> None:
    example = deploy_guide_installations_example()
    settings = load_settings({**cdk_json_context(), **example})
    assert [i.name for i in settings.installations] == ["prod", "eu"]
    app = synthesize(example)
    assert app.validation_error is None
    assert len(app.resources("AWS::Scheduler::Schedule")) == 3  # two rotations and the watch


def test_the_deploy_guide_govcloud_example_synthesizes_in_its_own_partition() -> None:
    overrides = deploy_guide_govcloud_overrides()
    assert overrides["installations"].startswith("[")  # JSON text, as -c passes it
    settings = load_settings({**cdk_json_context(), **overrides})
    assert settings.region == "us-gov-west-1"
    assert settings.powertools_layer_arn == overrides["powertoolsLayerArn"]
    assert [i.partition for i in settings.installations] == ["aws-us-gov"]
    app = synthesize(overrides)
    assert app.validation_error is None
    layers = app.template_json["Resources"]
    assert "arn:aws-us-gov:lambda:us-gov-west-1:" in json.dumps(layers)


def test_the_deploy_guide_govcloud_installation_is_refused_in_a_commercial_stack() -> None:
    overrides = deploy_guide_govcloud_overrides()
    message = refusal({**cdk_json_context(), "installations": overrides["installations"]})
    assert "installations[0].sesRegion" in message
    assert "one stack per partition" in message


def test_the_deploy_guide_message_example_is_the_one_synthesis_gives() -> None:
    quoted = re.search(
        r"`(Setting installations\[2\]\.sesRegion: .*?)\.\.\.`", DEPLOY_GUIDE, flags=re.S
    )
    assert quoted, "the deploy guide's example message is gone"
    context = cdk_json_context()
    value = re.search(r"sesRegion: '([^']+)'", quoted.group(1))
    assert value
    context["installations"] = [
        PROD,
        {**PROD, "name": "eu"},
        {**PROD, "name": "third", "sesRegion": value.group(1)},
    ]
    assert refusal(context).startswith(" ".join(quoted.group(1).split()))


@pytest.mark.parametrize(
    ("key", "attribute"),
    [
        ("account", "account"),
        ("alarmEmail", "alarm_email"),
        ("alarmTopicArn", "alarm_topic_arn"),
        ("vpc", "vpc"),
        ("kmsKeyArn", "kms_key_arn"),
        ("powertoolsLayerArn", "powertools_layer_arn"),
    ],
)
def test_c_key_null_clears_every_setting_that_may_be_null(key: str, attribute: str) -> None:
    """``cdk deploy -c vpc=null`` arrives as the text "null": it drops what cdk.json set."""
    set_in_cdk_json = {
        "account": "111122223333",
        "alarmEmail": "ops@example.com",
        "alarmTopicArn": "arn:aws:sns:us-east-1:111122223333:alerts",
        "vpc": VPC_WITH_SES_ENDPOINT,
        "kmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "powertoolsLayerArn": "arn:aws:lambda:us-east-1:111122223333:layer:powertools:1",
    }
    assert getattr(load({**MINIMAL, key: set_in_cdk_json[key]}), attribute) is not None
    assert getattr(load({**MINIMAL, key: "null"}), attribute) is None


def named(**deployments: dict[str, Any]) -> dict[str, Any]:
    return {**MINIMAL, "alarmEmail": "ops@example.com", "deployments": deployments}


GOVCLOUD = {
    "stackName": "SesSmtpRotatorGov",
    "region": "us-gov-west-1",
    "installations": [{**PROD, "sesRegion": "us-gov-west-1"}],
}


def test_a_named_deployment_is_chosen_with_c_deployment_and_its_keys_win() -> None:
    context = named(govcloud=GOVCLOUD, commercial={})
    gov = load({**context, "deployment": "govcloud"})
    assert gov.stack_name == "SesSmtpRotatorGov"
    assert gov.region == "us-gov-west-1"
    assert gov.installations[0].ses_region == "us-gov-west-1"
    assert gov.alarm_email == "ops@example.com"  # shared from the top level
    commercial = load({**context, "deployment": "commercial"})
    assert commercial.stack_name == "SesSmtpRotator"
    assert commercial.region == "us-east-1"
    assert load(context).region == "us-east-1"  # no selection: the top-level settings


def test_an_unknown_deployment_is_refused_with_the_names_there_are() -> None:
    message = refusal({**named(govcloud=GOVCLOUD), "deployment": "govclod"})
    assert "Setting deployment: 'govclod' names no entry of deployments" in message
    assert "(known: govcloud)" in message
    assert "did you mean govcloud?" in message


def test_a_misspelled_key_inside_a_deployment_is_named_with_its_path() -> None:
    message = refusal(named(govcloud={"regoin": "us-gov-west-1"}))
    assert "Setting deployments.govcloud.regoin: not a setting here" in message
    assert "did you mean region?" in message
