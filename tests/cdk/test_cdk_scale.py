"""One cdk.json with 1, 100 or 500 installations: every stack and every role within AWS's limits,
policies of a constant size, installations that never move between stacks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cfnlint.api import lint
from cfnlint.config import ManualArgs
from synthesized_app import Synthesized

from ses_smtp_rotator.cdk import KionInstallation
from ses_smtp_rotator.cdk.installation_stacks import (
    MAX_INSTALLATIONS_PER_STACK,
    STACK_COUNT,
    group_installations,
    stack_index,
)

SIZES = [1, 100, 500]
# CloudFormation and IAM quotas.
MAX_RESOURCES = 500
MAX_OUTPUTS = 200
MAX_PARAMETERS = 200
MAX_TEMPLATE_BYTES = 1_000_000  # templates the CDK uploads to S3
MAX_INLINE_POLICY_BYTES = 10_240  # all inline policies of one role together
MAX_MANAGED_POLICY_BYTES = 6_144
MAX_MANAGED_POLICIES = 10
MAX_TEMPLATE_BODY_BYTES = (
    51_200  # a template passed inline (cdk deploy without a bucket, StackSets)
)


def compact(document: Any) -> int:
    """The size IAM counts (no whitespace); intrinsic functions make it an upper bound."""
    return len(json.dumps(document, separators=(",", ":")))


def roles_and_policies(app: Synthesized) -> dict[str, dict[str, Any]]:
    """Per role (template:logical id): inline policy bytes and the number of managed policies."""
    found = {}
    for name, template in app.templates.items():
        resources = template.get("Resources", {})
        for role_id, role in resources.items():
            if role["Type"] != "AWS::IAM::Role":
                continue
            inline = [p["PolicyDocument"] for p in role["Properties"].get("Policies", [])]
            managed = len(role["Properties"].get("ManagedPolicyArns", []))
            for resource in resources.values():
                roles = resource.get("Properties", {}).get("Roles", [])
                if {"Ref": role_id} not in roles:
                    continue
                if resource["Type"] == "AWS::IAM::Policy":
                    inline.append(resource["Properties"]["PolicyDocument"])
                elif resource["Type"] == "AWS::IAM::ManagedPolicy":
                    managed += 1
            found[f"{name}:{role_id}"] = {
                "inline_bytes": sum(compact(document) for document in inline),
                "managed": managed,
            }
    return found


@pytest.mark.parametrize("size", SIZES)
def test_every_template_is_within_cloudformation_limits(
    apps_by_size: dict[int, Synthesized], size: int
) -> None:
    app = apps_by_size[size]
    assert len(app.stack.rotation.installations) == size
    for name, template in app.templates.items():
        assert len(template.get("Resources", {})) <= MAX_RESOURCES, name
        assert len(template.get("Outputs", {})) <= MAX_OUTPUTS, name
        assert len(template.get("Parameters", {})) <= MAX_PARAMETERS, name
        assert len(json.dumps(template)) <= MAX_TEMPLATE_BYTES, name


@pytest.mark.parametrize("size", SIZES)
def test_every_role_is_within_iam_limits(apps_by_size: dict[int, Synthesized], size: int) -> None:
    for role, figures in roles_and_policies(apps_by_size[size]).items():
        assert figures["inline_bytes"] <= MAX_INLINE_POLICY_BYTES, role
        assert figures["managed"] <= MAX_MANAGED_POLICIES, role


def test_policies_do_not_grow_with_the_installations(
    apps_by_size: dict[int, Synthesized],
) -> None:
    def sizes(app: Synthesized) -> dict[str, int]:
        return {
            role.split(":", 1)[1]: figures["inline_bytes"]
            for role, figures in roles_and_policies(app).items()
            if role.startswith(f"{app.stack.artifact_id}.template.json:")
        }

    assert sizes(apps_by_size[1]) == sizes(apps_by_size[100]) == sizes(apps_by_size[500])
    # Secrets Manager may invoke the rotation and the Kion API key renewal, one permission each.
    assert len(apps_by_size[500].resources("AWS::Lambda::Permission")) == 2


@pytest.mark.parametrize("size", SIZES)
def test_one_function_one_topic_and_one_scheduler_role_serve_all_installations(
    apps_by_size: dict[int, Synthesized], size: int
) -> None:
    app = apps_by_size[size]
    # The rotation, the settings writer, the Kion API key renewal and the daily watch.
    assert len(app.resources("AWS::Lambda::Function")) == 4
    assert len(app.resources("AWS::SNS::Topic")) == 1
    assert len(app.resources("AWS::Events::Rule")) == 1
    # The four functions', the rotation schedules' and the watch schedule's.
    assert len(app.resources("AWS::IAM::Role")) == 6
    assert len(app.resources("AWS::Scheduler::Schedule")) == size + 1  # and the watch's
    created_keys = sum(
        resources.creates_api_key_secret for resources in app.stack.rotation.installations.values()
    )
    # Each installation's rotation, and the renewal of each Kion API key secret the stack made.
    assert len(app.resources("AWS::SecretsManager::RotationSchedule")) == size + created_keys


def test_installations_are_spread_over_nested_stacks(apps_by_size: dict[int, Synthesized]) -> None:
    for size, app in apps_by_size.items():
        nested = app.stack.rotation.installation_stacks
        assert 1 <= len(nested) <= min(size, STACK_COUNT)
        assert sum(len(stack.installations) for stack in nested) == size
        for stack in nested:
            assert len(stack.installations) <= MAX_INSTALLATIONS_PER_STACK


def test_the_synthesized_app_of_500_passes_cdk_nag_and_cfn_lint(app_of_500: Synthesized) -> None:
    assert app_of_500.validation_error is None
    # Every installation stack is built by the same code; lint the stack and the largest one
    # (all seventeen take a minute).
    templates = app_of_500.templates
    largest = max(
        (name for name in templates if name.endswith(".nested.template.json")),
        key=lambda name: len(templates[name]["Resources"]),
    )
    for name in (f"{app_of_500.stack.artifact_id}.template.json", largest):
        matches = lint(json.dumps(templates[name]), config=ManualArgs(regions=["us-east-1"]))
        assert [str(match) for match in matches] == [], name


def test_an_installation_keeps_its_stack_when_others_come_and_go() -> None:
    names = [f"kion-{i:03d}" for i in range(500)]
    before = {name: stack_index(name) for name in names}
    fewer = [name for name in names if name != "kion-250"] + ["a-new-one"]
    after = group_installations([installation(name) for name in reversed(fewer)])
    for index, members in after.items():
        for member in members:
            if member.name in before:
                assert before[member.name] == index
    assert stack_index("Prod") == stack_index("prod")


def test_a_stack_that_would_overflow_is_refused_naming_the_fix() -> None:
    crowded = []
    candidate = 0
    while len(crowded) <= MAX_INSTALLATIONS_PER_STACK:
        name = f"site-{candidate}"
        if stack_index(name) == 0:
            crowded.append(installation(name))
        candidate += 1
    with pytest.raises(ValueError, match=r"installation stack 0.*Fix: rename some of them"):
        group_installations(crowded)


def installation(name: str) -> KionInstallation:
    return KionInstallation(name=name, kion_url="https://kion.example.com", ses_region="us-east-1")


def test_500_installations_in_500_accounts_stay_within_cloudformation_limits(
    app_of_500_accounts: Synthesized,
) -> None:
    app = app_of_500_accounts
    assert len(app.stack.rotation.installations) == 500
    assert len(app.stack.access_stacks) == 500
    templates = app.templates
    access = [name for name in templates if "-Access-" in name]
    assert len(access) == 500
    for name, template in templates.items():
        assert len(template.get("Resources", {})) <= MAX_RESOURCES, name
        assert len(template.get("Outputs", {})) <= MAX_OUTPUTS, name
        assert len(template.get("Parameters", {})) <= MAX_PARAMETERS, name
        assert len(json.dumps(template)) <= MAX_TEMPLATE_BYTES, name
    for name in access:
        assert len(json.dumps(templates[name], separators=(",", ":"))) <= MAX_TEMPLATE_BODY_BYTES


def test_500_installations_in_500_accounts_stay_within_iam_limits(
    app_of_500_accounts: Synthesized,
) -> None:
    app = app_of_500_accounts
    for role, figures in roles_and_policies(app).items():
        assert figures["inline_bytes"] <= MAX_INLINE_POLICY_BYTES, role
        assert figures["managed"] <= MAX_MANAGED_POLICIES, role
    for logical_id, policy in app.resources("AWS::IAM::ManagedPolicy").items():
        assert compact(policy["Properties"]["PolicyDocument"]) <= MAX_MANAGED_POLICY_BYTES, (
            logical_id
        )
    # One AssumeRole statement each for the rotation and the watch, whatever the accounts: no
    # SES account is named anywhere in the deployment's own templates.
    main = json.dumps(app.template_json)
    assert main.count('"SesAccountAccess"') == 2
    assert "200000000499" not in main


def test_the_app_of_500_accounts_passes_cdk_nag_and_cfn_lint(
    app_of_500_accounts: Synthesized,
) -> None:
    assert app_of_500_accounts.validation_error is None
    templates = app_of_500_accounts.templates
    # Every access stack is built by the same code: lint the stack and one of them.
    for name in (
        f"{app_of_500_accounts.stack.artifact_id}.template.json",
        "SesSmtpRotator-Access-200000000499.template.json",
    ):
        matches = lint(json.dumps(templates[name]), config=ManualArgs(regions=["us-east-1"]))
        assert [str(match) for match in matches] == [], name
