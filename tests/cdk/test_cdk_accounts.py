"""Installations in other AWS accounts: ``sesAccount`` is checked at synth, each SES account gets an
access stack whose role trusts the two function roles by exact ARN only, and the functions may
assume that role by name in the organisation's accounts. Same-account deployments are unchanged."""

from __future__ import annotations

import json
import re
from typing import Any

import aws_cdk as cdk
import pytest
from cfnlint.api import lint
from cfnlint.config import ManualArgs
from synthesized_app import Synthesized, cdk_json_context, synthesize
from test_cdk_checks import ACCEPTED_FINDINGS

from ses_smtp_rotator.cdk import (
    Installation,
    SesSmtpAccessStack,
    SesSmtpRotation,
    SettingsError,
    load_settings,
)
from ses_smtp_rotator.cdk.accounts import IAM_NAME_LIMIT, iam_name
from ses_smtp_rotator.cdk.function import ROTATION_KEY_ACTIONS
from ses_smtp_rotator.cdk.installation import PropertyError
from ses_smtp_rotator.cdk.installation_resources import installation_settings

DEPLOYMENT_ACCOUNT = "123456789012"
SES_ACCOUNT = "111122223333"
ORGANIZATION = "o-abcdefghij"
ACCESS_TEMPLATE = f"SesSmtpRotator-Access-{SES_ACCOUNT}.template.json"
USER_PATH = "/ses-smtp-rotator/SesSmtpRotator/"
ROTATION_ROLE = f"arn:aws:iam::{DEPLOYMENT_ACCOUNT}:role{USER_PATH}SesSmtpRotator-rotation"
WATCH_ROLE = f"arn:aws:iam::{DEPLOYMENT_ACCOUNT}:role{USER_PATH}SesSmtpRotator-watch"
PROD = {"name": "prod", "kionUrl": "https://kion.example.com", "sesRegion": "us-east-1"}
MAIL = {
    "name": "mail",
    "kionUrl": "https://kion2.example.com",
    "sesRegion": "us-east-1",
    "sesAccount": SES_ACCOUNT,
}
NAMED = {
    "name": "old",
    "kionUrl": "https://kion3.example.com",
    "sesRegion": "us-east-1",
    "sesAccount": SES_ACCOUNT,
    "iamUserName": "kion-smtp",
    "iamUserPath": "/mail/",
}
CROSS_ACCOUNT = {
    "account": DEPLOYMENT_ACCOUNT,
    "organizationId": ORGANIZATION,
    "installations": [PROD, MAIL, NAMED],
}


@pytest.fixture(scope="module")
def cross_account_app() -> Synthesized:
    return synthesize(CROSS_ACCOUNT)


def refusal(**changes: Any) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings({**cdk_json_context(), **CROSS_ACCOUNT, **changes})
    return str(caught.value)


def resolved(value: Any) -> Any:
    """``{"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ...]]}`` -> ``arn:aws...``."""
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(resolved(part) for part in parts)
    if value == {"Ref": "AWS::Partition"}:
        return "aws"
    if isinstance(value, list):
        return [resolved(item) for item in value]
    return value


def access_role(app: Synthesized) -> dict[str, Any]:
    template = app.templates[ACCESS_TEMPLATE]
    (role,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    return role["Properties"]


def statements(app: Synthesized, sid: str) -> list[dict[str, Any]]:
    return [
        statement
        for template in app.templates.values()
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Sid") == sid
    ]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("11112222333", "is not a 12-digit AWS account id"),
        ("1111222233334", "is not a 12-digit AWS account id"),
        ("11112222333a", "is not a 12-digit AWS account id"),
        (111122223333, "is not a non-empty string"),
    ],
)
def test_a_wrong_ses_account_is_refused_naming_the_setting(value: Any, problem: str) -> None:
    message = refusal(installations=[PROD, {**MAIL, "sesAccount": value}])
    assert message.startswith("Setting installations[1].sesAccount: ")
    assert problem in message
    assert "Fix: " in message


def test_a_govcloud_account_from_a_commercial_stack_is_refused_naming_the_partition() -> None:
    gov = {**MAIL, "sesRegion": "us-gov-west-1"}
    message = refusal(installations=[PROD, gov])
    assert message.startswith("Setting installations[1].sesAccount: '111122223333' ")
    assert "partition aws-us-gov" in message
    assert "us-east-1 in aws" in message
    assert "deploy a second stack in aws-us-gov" in message


def test_an_ses_account_needs_the_stacks_account_and_the_organisation() -> None:
    no_account = refusal(account=None)
    assert no_account.startswith("Setting installations[1].sesAccount: ")
    assert "account in cdk.json" in no_account

    no_organization = refusal(organizationId=None)
    assert no_organization.startswith("Setting organizationId: ")
    assert "sesAccount is not the stack's" in no_organization
    assert "aws organizations describe-organization" in no_organization

    malformed = refusal(organizationId="r-abcd")
    assert malformed.startswith("Setting organizationId: 'r-abcd' is not an AWS Organizations id")


def test_the_construct_refuses_the_same_wrong_account() -> None:
    with pytest.raises(PropertyError) as caught:
        Installation(
            name="mail",
            kion_url="https://kion.example.com",
            ses_region="us-east-1",
            ses_account="1234",
        )
    assert caught.value.field == "ses_account"
    assert "12-digit" in str(caught.value)


def test_the_installation_secret_names_the_ses_account_only_when_set() -> None:
    same = Installation(name="prod", kion_url="https://kion.example.com", ses_region="us-east-1")
    other = Installation(
        name="mail",
        kion_url="https://kion.example.com",
        ses_region="us-east-1",
        ses_account=SES_ACCOUNT,
    )
    assert "ses_account" not in installation_settings(same, "user", "arn")
    assert installation_settings(other, "user", "arn")["ses_account"] == SES_ACCOUNT


def test_the_access_role_trusts_the_two_function_roles_by_exact_arn_only(
    cross_account_app: Synthesized,
) -> None:
    role = access_role(cross_account_app)
    assert role["RoleName"] == "SesSmtpRotator-ses-access"
    assert role["Path"] == USER_PATH
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Effect"] == "Allow"
    assert trust["Action"] == "sts:AssumeRole"
    # The deployment account's root as principal, narrowed to the two roles: never '*', never
    # any other principal of that account.
    assert trust["Principal"] == {"AWS": f"arn:aws:iam::{DEPLOYMENT_ACCOUNT}:root"}
    assert set(trust["Condition"]) == {"ArnEquals"}
    assert sorted(resolved(trust["Condition"]["ArnEquals"]["aws:PrincipalArn"])) == [
        ROTATION_ROLE,
        WATCH_ROLE,
    ]
    # The names the trust expects are the names the main stack gives its function roles.
    names = {
        r["Properties"].get("RoleName")
        for r in cross_account_app.template_json["Resources"].values()
        if r["Type"] == "AWS::IAM::Role"
    }
    assert {"SesSmtpRotator-rotation", "SesSmtpRotator-watch"} <= names


def test_the_access_role_may_only_manage_keys_of_the_deployments_users_there(
    cross_account_app: Synthesized,
) -> None:
    role = access_role(cross_account_app)
    (policy,) = role["Policies"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert sorted(statement["Action"]) == sorted(ROTATION_KEY_ACTIONS)
    assert sorted(resolved(statement["Resource"])) == [
        f"arn:aws:iam::{SES_ACCOUNT}:user/mail/kion-smtp",
        f"arn:aws:iam::{SES_ACCOUNT}:user{USER_PATH}*",
    ]
    assert "Condition" not in statement
    assert "ManagedPolicyArns" not in role


def test_the_access_stack_makes_only_the_users_asked_for(cross_account_app: Synthesized) -> None:
    template = cross_account_app.templates[ACCESS_TEMPLATE]
    users = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::User"]
    (user,) = users  # mail's; old names its existing user
    properties = user["Properties"]
    assert properties["UserName"] == "SesSmtpRotator-mail"
    assert properties["Path"] == USER_PATH
    (statement,) = properties["Policies"][0]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "ses:SendRawEmail"
    assert user["DeletionPolicy"] == "RetainExceptOnCreate"
    # The main stack makes the same-account user only, and names mail's by its fixed name.
    main_users = [
        resource
        for name, template in cross_account_app.templates.items()
        if name != ACCESS_TEMPLATE
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::User"
    ]
    assert len(main_users) == 1
    outputs = {
        key: output["Value"]
        for template in cross_account_app.templates.values()
        for key, output in template.get("Outputs", {}).items()
    }
    assert outputs["MailSmtpUserName"] == "SesSmtpRotator-mail"
    assert outputs["OldSmtpUserName"] == "kion-smtp"
    # The settings each installation secret gets name the SES account of mail and old only.
    written = [
        json.dumps(resource["Properties"]["Settings"])
        for template in cross_account_app.templates.values()
        for resource in template["Resources"].values()
        if resource["Type"] == "Custom::InstallationSettings"
    ]
    assert len(written) == 3
    assert sum(f'\\"ses_account\\":\\"{SES_ACCOUNT}\\"' in text for text in written) == 2
    assert sum("ses_account" in text for text in written) == 2


def test_the_access_stack_needs_no_bootstrap_and_no_parameters(
    cross_account_app: Synthesized,
) -> None:
    template = cross_account_app.templates[ACCESS_TEMPLATE]
    assert "Parameters" not in template
    assert "Rules" not in template
    text = json.dumps(template)
    assert "cdk-hnb659fds" not in text
    assert "AssetParameters" not in text
    manifest = json.loads((cross_account_app.template_path.parent / "manifest.json").read_text())
    artifact = manifest["artifacts"][f"SesSmtpRotator-Access-{SES_ACCOUNT}"]
    assert artifact["environment"] == f"aws://{SES_ACCOUNT}/us-east-1"
    assert "assumeRoleArn" not in artifact["properties"]
    assert not artifact.get("dependencies")


def test_the_functions_may_assume_the_access_role_in_the_organisation_only(
    cross_account_app: Synthesized,
) -> None:
    granted = statements(cross_account_app, "SesAccountAccess")
    assert len(granted) == 2  # the rotation's and the watch's
    for statement in granted:
        assert statement["Action"] == "sts:AssumeRole"
        assert resolved(statement["Resource"]) == (
            f"arn:aws:iam::*:role{USER_PATH}SesSmtpRotator-ses-access"
        )
        assert statement["Condition"] == {"StringEquals": {"aws:ResourceOrgID": ORGANIZATION}}
    functions = cross_account_app.resources("AWS::Lambda::Function")
    told = [
        f["Properties"]["Environment"]["Variables"]
        for f in functions.values()
        if "SES_ACCESS_ROLE_ARN" in f["Properties"].get("Environment", {}).get("Variables", {})
    ]
    assert len(told) == 2
    for variables in told:
        assert resolved(variables["SES_ACCESS_ROLE_ARN"]) == (
            f"arn:aws:iam::{{account}}:role{USER_PATH}SesSmtpRotator-ses-access"
        )
        assert variables["DEPLOYMENT_ACCOUNT_ID"] == {"Ref": "AWS::AccountId"}
    # No policy of the main stack names the user in the other account.
    for template in [cross_account_app.template_json]:
        assert SES_ACCOUNT not in json.dumps(template)


def test_the_cross_account_app_passes_cdk_nag_and_cfn_lint(
    cross_account_app: Synthesized,
) -> None:
    assert cross_account_app.validation_error is None
    for name, template in cross_account_app.templates.items():
        matches = lint(json.dumps(template), config=ManualArgs(regions=["us-east-1"]))
        assert [str(match) for match in matches] == [], name


def test_every_acknowledgment_of_both_stacks_is_a_known_design_decision(
    cross_account_app: Synthesized,
) -> None:
    found = [
        rule_id.removeprefix("Annotation::")
        for stack in [cross_account_app.stack, *cross_account_app.stack.access_stacks]
        for construct in stack.node.find_all()
        for entry in construct.node.metadata
        if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule_id in entry.data
    ]
    assert any("ses-access" in rule_id for rule_id in found)
    for rule_id in found:
        assert any(re.fullmatch(pattern, rule_id) for pattern in ACCEPTED_FINDINGS), rule_id


def test_operators_reach_other_accounts_through_the_watch_only(
    cross_account_app: Synthesized,
) -> None:
    (policy,) = cross_account_app.resources("AWS::IAM::ManagedPolicy").values()
    by_sid = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    invoked = json.dumps(by_sid["RotationAndWatchFunctions"]["Resource"])
    assert "RotationWatchFunction" in invoked
    assert SES_ACCOUNT not in json.dumps(policy)
    assert "sts:AssumeRole" not in json.dumps(policy)


def test_same_account_installations_get_no_access_stack_and_no_role_names() -> None:
    app = synthesize(
        {
            "account": DEPLOYMENT_ACCOUNT,
            "installations": [PROD, {**MAIL, "sesAccount": DEPLOYMENT_ACCOUNT}],
        }
    )
    assert app.stack.access_stacks == []
    assert not [name for name in app.templates if "-Access-" in name]
    roles = app.resources("AWS::IAM::Role")
    assert not [r for r in roles.values() if "RoleName" in r["Properties"]]
    assert statements(app, "SesAccountAccess") == []
    assert len(app.resources("AWS::IAM::User")) == 2  # both made in the stack's account
    assert app.validation_error is None


def test_long_deployment_names_make_unique_iam_names_within_the_limit() -> None:
    long_a = "A" + "b" * 99
    long_b = "A" + "b" * 98 + "c"
    names = {iam_name(name, "ses-access") for name in (long_a, long_b)}
    assert len(names) == 2
    assert all(len(name) <= IAM_NAME_LIMIT and name.endswith("-ses-access") for name in names)
    assert iam_name("SesSmtpRotator", "watch") == "SesSmtpRotator-watch"


def test_a_teams_own_app_makes_the_access_stack_of_each_account() -> None:
    app = cdk.App()
    stack = cdk.Stack(
        app, "Mail", env=cdk.Environment(account=DEPLOYMENT_ACCOUNT, region="us-east-1")
    )
    mail = Installation(
        name="mail",
        kion_url="https://kion.example.com",
        ses_region="us-east-1",
        ses_account=SES_ACCOUNT,
    )
    rotation = SesSmtpRotation(
        stack, "Rotation", installations=[mail], organization_id=ORGANIZATION
    )
    assert list(rotation.ses_accounts) == [SES_ACCOUNT]
    access = SesSmtpAccessStack(app, "MailAccess", rotation=rotation, ses_account=SES_ACCOUNT)
    assert access.account == SES_ACCOUNT
    assert set(access.access.users) == {"mail"}
    with pytest.raises(ValueError, match="names ses_account '999988887777'"):
        SesSmtpAccessStack(app, "Other", rotation=rotation, ses_account="999988887777")


def test_the_construct_needs_the_stacks_account_for_an_ses_account() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Mail", env=cdk.Environment(region="us-east-1"))
    mail = Installation(
        name="mail",
        kion_url="https://kion.example.com",
        ses_region="us-east-1",
        ses_account=SES_ACCOUNT,
    )
    with pytest.raises(PropertyError) as caught:
        SesSmtpRotation(stack, "Rotation", installations=[mail], organization_id=ORGANIZATION)
    assert caught.value.field == "ses_account"
    assert "stack's env" in str(caught.value)
