"""Synthesized variants of the CDK app and helpers to read their templates.

Each variant is the real app (``SesSmtpRotatorStack`` with cdk-nag's AWS Solutions checks) built
from cdk.json's context with a few settings changed, synthesized once per test session: jsii
synthesis takes seconds.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# `infra` lives at the project root, whichever way pytest was started.
sys.path.insert(0, str(PROJECT_ROOT))
# Node 20 works for synthesis; keep jsii's end-of-life banner out of the test output. Both
# settings must precede the imports below (hence their E402 waivers).
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk  # noqa: E402
import trustme  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from ses_smtp_rotator.cdk import SesSmtpRotatorStack, load_settings  # noqa: E402

CDK_JSON = PROJECT_ROOT / "cdk.json"

EXISTING_API_KEY_ARN = (
    "arn:aws:secretsmanager:us-east-1:111122223333:secret:kion/gov/api-key-AbCdEf"
)
EXISTING_TOPIC_ARN = "arn:aws:sns:us-east-1:111122223333:platform-alerts"
KMS_KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
# A private CA that signed Kion's certificate (synthesis checks that the PEM parses).
PEM = trustme.CA().cert_pem.bytes().decode()


def cdk_json_context() -> dict[str, Any]:
    """The context in cdk.json: the app's settings and its CDK feature flags."""
    return json.loads(CDK_JSON.read_text())["context"]


@dataclass
class Synthesized:
    """One synthesized variant of the app."""

    stack: SesSmtpRotatorStack
    template: Template
    template_json: dict[str, Any]
    template_path: Path
    validation_report: dict[str, Any]
    validation_error: str | None

    @property
    def templates(self) -> dict[str, dict[str, Any]]:
        """Every template of the app by file name: the stack's and its nested stacks'."""
        return {
            path.name: json.loads(path.read_text())
            for path in sorted(self.template_path.parent.glob("*.template.json"))
        }

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """The resources of a type in the stack and its nested stacks, by logical id."""
        found: dict[str, dict[str, Any]] = {}
        for template in self.templates.values():
            for logical_id, resource in template.get("Resources", {}).items():
                if resource["Type"] == resource_type:
                    assert logical_id not in found, f"two resources named {logical_id}"
                    found[logical_id] = resource
        return found

    def logical_id(self, construct: cdk.IResource | Any) -> str:
        """The logical id of a construct's CloudFormation resource (in its own stack)."""
        cfn = construct if isinstance(construct, cdk.CfnElement) else construct.node.default_child
        stack = cdk.Stack.of(cfn)
        return stack.resolve(stack.get_logical_id(cfn))


def synthesize(overrides: Mapping[str, Any]) -> Synthesized:
    """Synthesize the app with cdk.json's context updated by ``overrides``, cdk-nag included."""
    outdir = tempfile.mkdtemp(prefix="cdk-test-")
    app = cdk.App(context={**cdk_json_context(), **overrides}, outdir=outdir)
    stack = SesSmtpRotatorStack(
        app, "SesSmtpRotator", settings=load_settings(app.node.try_get_context)
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    validation_error = None
    try:
        app.synth()
    except RuntimeError as error:  # cdk-nag found something: keep the report for the nag test
        validation_error = str(error)
    report_path = Path(outdir) / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    if validation_error is not None:
        # Rebuild without the checks so the other tests still see the template.
        outdir = tempfile.mkdtemp(prefix="cdk-test-")
        app = cdk.App(context={**cdk_json_context(), **overrides}, outdir=outdir)
        stack = SesSmtpRotatorStack(
            app, "SesSmtpRotator", settings=load_settings(app.node.try_get_context)
        )
        app.synth()
    template_path = Path(outdir) / f"{stack.artifact_id}.template.json"
    return Synthesized(
        stack=stack,
        template=Template.from_stack(stack),
        template_json=json.loads(template_path.read_text()),
        template_path=template_path,
        validation_report=report,
        validation_error=validation_error,
    )


FLEET = {
    "installations": [
        {
            "name": "prod",
            "kionUrl": "https://kion.example.com",
            "sesRegion": "us-east-1",
            "fromAddress": "kion@example.com",
        },
        {
            "name": "gov",
            "kionUrl": "https://kion.gov.example.com",
            "sesRegion": "us-west-2",
            "smtpHost": "email-smtp-fips.us-west-2.amazonaws.com",
            "smtpPort": 2587,
            "iamUserName": "kion-gov-smtp",
            "iamUserPath": "/mail/",
            "kionApiKeySecretArn": EXISTING_API_KEY_ARN,
            "kionCaBundle": PEM,
        },
    ],
    "account": "111122223333",
    "kmsKeyArn": KMS_KEY_ARN,
    "alarmTopicArn": EXISTING_TOPIC_ARN,
    "alarmEmail": "platform@example.com",
    "rotationSchedule": {
        "expression": "rate(30 days)",
        "timeZone": "America/New_York",
        "flexibleWindowMinutes": 0,
        "enabled": False,
    },
    "logRetentionDays": 90,
    "logLevel": "DEBUG",
    "sesAcceptTimeoutSeconds": 200,
    "functionTimeoutSeconds": 900,
    "removalPolicy": "destroy",
}

VPC = {
    "installations": [
        {"name": "prod", "kionUrl": "https://kion.example.com", "sesRegion": "us-east-1"},
        {
            "name": "eu",
            "kionUrl": "https://kion-eu.example.com:8443",
            "sesRegion": "eu-west-1",
            "smtpPort": 2587,
        },
    ],
    "vpc": {
        "vpcId": "vpc-0123456789abcdef0",
        "subnetIds": ["subnet-0aaa1111", "subnet-0bbb2222"],
        "httpsEgressCidrs": ["0.0.0.0/0"],
        "smtpEgressCidrs": ["0.0.0.0/0"],
        "createSesSmtpEndpoint": True,
        "createSecretsManagerEndpoint": True,
        "createSqsEndpoint": True,
    },
}


def statements_of(app: Synthesized, attached_to: str, key: str = "Roles") -> list[dict[str, Any]]:
    """Every statement of the IAM policies attached to the role (or user) ``attached_to``."""
    statements = []
    for policy in app.resources("AWS::IAM::Policy").values():
        targets = policy["Properties"].get(key, [])
        if {"Ref": attached_to} in targets:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def only(items: Mapping[str, Any] | list[Any], what: str) -> Any:
    """The single item of ``items`` (a dict's value), failing with ``what`` otherwise."""
    values = list(items.values()) if isinstance(items, Mapping) else list(items)
    assert len(values) == 1, f"expected exactly one {what}, found {len(values)}"
    return values[0]


def logical_ids(items: Mapping[str, Any], predicate: Callable[[dict[str, Any]], bool]) -> list[str]:
    return [logical_id for logical_id, item in items.items() if predicate(item)]
