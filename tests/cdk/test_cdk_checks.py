"""The checks security reviewers run: cdk-nag (AWS Solutions) and cfn-lint, on every variant."""

from __future__ import annotations

import re

import aws_cdk as cdk
import pytest
from cfnlint.api import lint
from cfnlint.config import ManualArgs
from synthesized_app import Synthesized

VARIANTS = ["default", "fleet", "vpc", "eu-west-1"]

# The findings the design accepts, each acknowledged in code with its reason.
ACCEPTED_FINDINGS = [
    r"AwsSolutions-IAM5\[Resource::\*\]",  # X-Ray tracing; ENI management in a VPC
    # The created SES SMTP user: SendRawEmail on identities/configuration sets of its region.
    r"AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:ses:[a-z0-9-]+:<AWS::AccountId>:"
    r"(identity|configuration-set)/\*\]",
    # One statement per role for all of the deployment's secrets (name prefix and tag) or users
    # (IAM path), so that policies keep their size at any number of installations.
    r"AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:secretsmanager:[a-z0-9-]+:"
    r"(<AWS::AccountId>|\d{12}):secret:ses-smtp-rotator/SesSmtpRotator/(smtp|kion-api-key)/\*\]",
    r"AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:iam::(<AWS::AccountId>|\d{12}):"
    r"user/ses-smtp-rotator/SesSmtpRotator/\*\]",
    # The watch's schedule may invoke the watch function (and its versions); operators may read
    # the schedules of the deployment's schedule group.
    r"AwsSolutions-IAM5\[Resource::<RotationWatchFunction[0-9A-F]{8}\.Arn>:\*\]",
    r"AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:scheduler:[a-z0-9-]+:"
    r"(<AWS::AccountId>|\d{12}):schedule/[A-Za-z0-9-]+/\*\]",
    # The watch's open incidents: one parameter per installation under the deployment's path.
    r"AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:ssm:[a-z0-9-]+:"
    r"(<AWS::AccountId>|\d{12}):parameter/ses-smtp-rotator/SesSmtpRotator/incidents/\*\]",
    # Installations in other accounts: the functions may assume the deployment's access role
    # (name and path) in any account of the organisation.
    r"AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:iam::\*:"
    r"role/ses-smtp-rotator/SesSmtpRotator/SesSmtpRotator-ses-access\]",
    r"AwsSolutions-L1",  # the runtime the code is tested on, not always the newest
    r"AwsSolutions-SMG4",  # rotation scheduled by EventBridge Scheduler; Kion API keys
    r"@aws-cdk/aws-ec2:noSubnetRouteTableId",  # imported subnets are used by id only
    r"@aws-cdk/aws-ec2:vpcAttributeIsListTokenavailabilityZones",
]


@pytest.mark.parametrize("variant", VARIANTS)
def test_cdk_nag_aws_solutions_has_no_unacknowledged_finding(
    all_apps: dict[str, Synthesized], variant: str
) -> None:
    app = all_apps[variant]
    violations = [
        f"{violation['ruleName']} at {construct['constructPath']}"
        for report in app.validation_report.get("pluginReports", [])
        for violation in report.get("violations", [])
        for construct in violation.get("violatingConstructs", [])
    ]
    assert app.validation_error is None, "\n".join(violations) or app.validation_error
    assert violations == []


def acknowledgments(app: Synthesized) -> dict[str, list[str]]:
    """Rule id -> the reasons given where it is acknowledged, across the whole stack."""
    found: dict[str, list[str]] = {}
    for construct in app.stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule_id, reason in entry.data.items():
                    found.setdefault(rule_id.removeprefix("Annotation::"), []).append(reason)
    return found


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_acknowledgment_is_a_known_design_decision_with_its_reason(
    all_apps: dict[str, Synthesized], variant: str
) -> None:
    found = acknowledgments(all_apps[variant])
    assert found, "expected the design's acknowledgments"
    for rule_id, reasons in found.items():
        assert any(re.fullmatch(pattern, rule_id) for pattern in ACCEPTED_FINDINGS), rule_id
        for reason in reasons:
            assert len(reason) > 60, f"{rule_id}: reason too thin: {reason!r}"


def test_wildcards_are_acknowledged_only_where_aws_allows_no_scoping(
    vpc_app: Synthesized, default_app: Synthesized
) -> None:
    for app in (vpc_app, default_app):
        wildcards = acknowledgments(app)["AwsSolutions-IAM5[Resource::*]"]
        topics = sorted(
            "X-Ray" in reason
            or "VPC attachment" in reason
            or "no resource-level permissions" in reason
            for reason in wildcards
        )
        assert all(topics)
    # The rotation, renewal and watch functions' roles and the operator policy; in a VPC also
    # the rotation function's network interfaces.
    assert len(acknowledgments(vpc_app)["AwsSolutions-IAM5[Resource::*]"]) == 5
    assert len(acknowledgments(default_app)["AwsSolutions-IAM5[Resource::*]"]) == 4


@pytest.mark.parametrize("variant", VARIANTS)
def test_cfn_lint_finds_nothing(all_apps: dict[str, Synthesized], variant: str) -> None:
    app = all_apps[variant]
    templates = sorted(app.template_path.parent.glob("*.template.json"))
    assert len(templates) >= 2  # the stack and its installation stack(s)
    for template in templates:
        matches = lint(template.read_text(), config=ManualArgs(regions=[app.stack.region]))
        assert [str(match) for match in matches] == [], template.name
