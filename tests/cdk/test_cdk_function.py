"""The rotation function: runtime, code, Powertools layer, timeout, tracing, logs, invoke rights."""

from __future__ import annotations

import json
import re

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template
from synthesized_app import PROJECT_ROOT, Synthesized, only, synthesize

from ses_smtp_rotator.cdk import POWERTOOLS_RELEASE
from ses_smtp_rotator.cdk.function import required_timeout
from ses_smtp_rotator.cdk.powertools import layer_arn
from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.time_budget import WorstCase


def function_of(app: Synthesized) -> dict:
    function_id = app.logical_id(app.stack.rotation.function)
    return app.template_json["Resources"][function_id]["Properties"]


def test_one_function_serves_every_installation(fleet_app: Synthesized) -> None:
    handlers = sorted(
        f["Properties"]["Handler"] for f in fleet_app.resources("AWS::Lambda::Function").values()
    )
    # The rotation function, the settings writer of the deploys' custom resources, the Kion API
    # key renewal and the daily watch.
    assert handlers == [
        "ses_smtp_rotator.functions.installation_settings.handler.lambda_handler",
        "ses_smtp_rotator.functions.kion_key_renewal.handler.lambda_handler",
        "ses_smtp_rotator.functions.smtp_rotation.handler.lambda_handler",
        "ses_smtp_rotator.functions.watch.handler.lambda_handler",
    ]


def test_function_runs_python_3_12_or_newer_on_arm64(default_app: Synthesized) -> None:
    function = function_of(default_app)
    version = re.fullmatch(r"python3\.(\d+)", function["Runtime"])
    assert version
    assert int(version.group(1)) >= 12
    assert function["Architectures"] == ["arm64"]
    assert function["Handler"] == "ses_smtp_rotator.functions.smtp_rotation.handler.lambda_handler"


def test_code_is_the_functions_package_as_a_plain_asset(default_app: Synthesized) -> None:
    cloud_assembly = default_app.template_path.parent
    manifest = json.loads((cloud_assembly / "SesSmtpRotator.assets.json").read_text())
    assert manifest.get("dockerImages", {}) == {}  # nothing to build with Docker
    code = [
        asset for asset in manifest["files"].values() if asset["source"].get("packaging") == "zip"
    ]
    assert len(code) == 1
    asset_dir = cloud_assembly / code[0]["source"]["path"]
    assert (asset_dir / "ses_smtp_rotator" / "functions" / "smtp_rotation" / "handler.py").is_file()
    # Only the functions' code: no command line, constructs or stand-ins in the Lambda.
    assert sorted(p.name for p in (asset_dir / "ses_smtp_rotator").iterdir()) == [
        "__init__.py",
        "functions",
    ]
    assert not list(asset_dir.rglob("__pycache__"))
    s3_key = function_of(default_app)["Code"]["S3Key"]
    assert [d["objectKey"] for d in code[0]["destinations"].values()] == [s3_key]


REQUIREMENTS_DEV = PROJECT_ROOT / "requirements-dev.txt"


def test_the_layer_release_is_the_powertools_release_the_tests_run() -> None:
    pins = re.findall(
        r"^aws-lambda-powertools(?:\[[^\]]*\])?==(\S+)$",
        REQUIREMENTS_DEV.read_text(),
        flags=re.MULTILINE,
    )
    assert pins == [POWERTOOLS_RELEASE]


@pytest.mark.parametrize("app_fixture", ["default_app", "eu_app"])
def test_powertools_layer_is_read_from_its_release_parameter_at_deploy_time(
    request: pytest.FixtureRequest, app_fixture: str
) -> None:
    app: Synthesized = request.getfixturevalue(app_fixture)
    layers = function_of(app)["Layers"]
    assert len(layers) == 1
    parameter = app.template_json["Parameters"][layers[0]["Ref"]]
    assert parameter == {
        "Type": "AWS::SSM::Parameter::Value<String>",
        "Default": f"/aws/service/powertools/python/arm64/python3.12/{POWERTOOLS_RELEASE}",
    }
    assert not re.search(r"layer:AWSLambdaPowertools", json.dumps(app.template_json))


@pytest.mark.parametrize(
    "region", ["us-gov-west-1", "us-gov-east-1", "cn-north-1", "cn-northwest-1", "me-central-1"]
)
def test_a_region_without_the_parameter_is_refused_naming_the_setting(region: str) -> None:
    stack = cdk.Stack(cdk.App(), env=cdk.Environment(region=region))
    with pytest.raises(
        ValueError, match=f"no Powertools layer parameter in {region}.*Fix: set powertoolsLayerArn"
    ):
        layer_arn(
            stack, runtime=lambda_.Runtime.PYTHON_3_12, architecture=lambda_.Architecture.ARM_64
        )


def test_an_explicit_layer_arn_deploys_anywhere() -> None:
    arn = "arn:aws-us-gov:lambda:us-gov-west-1:111122223333:layer:powertools-3-37-0:1"
    gov = {"name": "gov", "kionUrl": "https://kion.gov.example.com", "sesRegion": "us-gov-west-1"}
    app = synthesize({"region": "us-gov-west-1", "powertoolsLayerArn": arn, "installations": [gov]})
    assert function_of(app)["Layers"] == [arn]
    assert not any(
        "/aws/service/powertools/" in str(p.get("Default"))
        for p in app.template_json.get("Parameters", {}).values()
    )


def test_an_environment_agnostic_stack_reads_the_parameter_of_its_region_at_deploy_time() -> None:
    stack = cdk.Stack(cdk.App())
    arn = layer_arn(
        stack, runtime=lambda_.Runtime.PYTHON_3_12, architecture=lambda_.Architecture.X86_64
    )
    cdk.CfnOutput(stack, "Layer", value=arn)
    template = Template.from_stack(stack).to_json()
    defaults = [p.get("Default") for p in template["Parameters"].values()]
    assert f"/aws/service/powertools/python/x86_64/python3.12/{POWERTOOLS_RELEASE}" in defaults


def test_timeout_covers_the_slowest_step_at_its_worst(
    default_app: Synthesized, fleet_app: Synthesized
) -> None:
    for app in (default_app, fleet_app):
        function = function_of(app)
        ses_wait = int(function["Environment"]["Variables"]["SES_ACCEPT_TIMEOUT_SECONDS"])
        step, needed = required_timeout(ses_wait)
        assert step == "setSecret"
        assert needed > ses_wait + 60  # the SES wait is not all a step waits for
        assert function["Timeout"] >= needed
    assert function_of(default_app)["Timeout"] == 900
    assert function_of(fleet_app)["Environment"]["Variables"]["SES_ACCEPT_TIMEOUT_SECONDS"] == "200"


def test_the_renewal_timeout_covers_its_slowest_step_at_its_worst(default_app: Synthesized) -> None:
    renewal_id = default_app.logical_id(default_app.stack.rotation.key_renewal_function)
    timeout = default_app.template_json["Resources"][renewal_id]["Properties"]["Timeout"]
    slowest = max(WorstCase(RotationConfig()).renewal_steps().values())
    assert slowest <= timeout < slowest + 60


def test_powertools_is_configured_through_the_environment(default_app: Synthesized) -> None:
    assert function_of(default_app)["Environment"]["Variables"] == {
        "POWERTOOLS_SERVICE_NAME": "ses-smtp-rotator",
        "POWERTOOLS_METRICS_NAMESPACE": "SesSmtpRotator",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        # The dimension every metric carries, so two stacks in one region keep them apart.
        "DEPLOYMENT_NAME": "SesSmtpRotator",
        "SES_ACCEPT_TIMEOUT_SECONDS": "120",
        "FUNCTION_TIMEOUT_SECONDS": "900",
        "PREVIOUS_KEY_GRACE_DAYS": "7",  # the rollback window, previousKeyGraceDays
        # How `ses-smtp-rotator status` finds the watch to ask about Kion's side.
        "WATCH_FUNCTION_NAME": {
            "Ref": default_app.logical_id(default_app.stack.rotation.watch.function)
        },
        # Where a rotation's notice and its outcome's event go (no notifyTopicArn: the alerts).
        "NOTICE_TOPIC_ARN": {"Ref": default_app.logical_id(default_app.stack.rotation.topic)},
        "EVENT_BUS_NAME": "default",
    }


def test_xray_tracing_is_active(default_app: Synthesized) -> None:
    assert function_of(default_app)["TracingConfig"] == {"Mode": "Active"}


def test_function_logs_to_its_own_log_group_with_a_retention(
    default_app: Synthesized, fleet_app: Synthesized
) -> None:
    log_group_id = default_app.logical_id(default_app.stack.rotation.log_group)
    log_group = default_app.template_json["Resources"][log_group_id]
    assert log_group["Properties"]["RetentionInDays"] == 365
    assert function_of(default_app)["LoggingConfig"] == {
        "LogFormat": "JSON",
        "LogGroup": {"Ref": log_group_id},
    }
    fleet_app.template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 90})


def test_secrets_manager_may_invoke_the_function_for_this_deployments_secrets_only(
    fleet_app: Synthesized,
) -> None:
    rotation = fleet_app.stack.rotation
    function_id = fleet_app.logical_id(rotation.function)
    # One permission for every installation: a function's resource policy is limited to 20 KB.
    permission = only(
        [
            p
            for p in fleet_app.resources("AWS::Lambda::Permission").values()
            if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}
        ],
        "invoke permission",
    )
    assert permission["Properties"] == {
        "Action": "lambda:InvokeFunction",
        "FunctionName": {"Fn::GetAtt": [function_id, "Arn"]},
        "Principal": "secretsmanager.amazonaws.com",
        "SourceAccount": {"Ref": "AWS::AccountId"},
        "SourceArn": fleet_app.stack.resolve(
            rotation.deployment.installation_secrets_arn(fleet_app.stack)
        ),
    }
    assert "secret:ses-smtp-rotator/SesSmtpRotator/smtp/*" in json.dumps(
        permission["Properties"]["SourceArn"]
    )


def test_function_role_has_no_managed_policies(
    default_app: Synthesized, vpc_app: Synthesized
) -> None:
    for app in (default_app, vpc_app):
        role_id = app.logical_id(app.stack.rotation.role)
        role = app.template_json["Resources"][role_id]
        assert "ManagedPolicyArns" not in role["Properties"]
        assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
            {
                "Action": "sts:AssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
            }
        ]
