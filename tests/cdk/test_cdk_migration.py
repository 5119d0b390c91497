"""Moving from the repository's app to the installed construct keeps every logical id.

docs/migrating.md promises it: a team's own app with a stack of the deployed name, a
``SesSmtpRotation`` with id ``Rotation`` and the same installations synthesizes the resources the
repository's app does, under the same logical ids, so a deploy from the team's app replaces nothing.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template
from synthesized_app import cdk_json_context

from ses_smtp_rotator.cdk import (
    Installation,
    SesSmtpRotation,
    SesSmtpRotatorStack,
    load_settings,
)
from ses_smtp_rotator.cdk.context_settings import SETTING_SHAPE

ALARM_EMAIL = "ops@example.com"
# What the named resources are called: a change here would replace them.
NAMED_TYPES = ("AWS::SecretsManager::Secret", "AWS::IAM::User", "AWS::Logs::LogGroup")


def resources_by_logical_id(stack: cdk.Stack, nested: list[cdk.NestedStack]) -> dict[str, Any]:
    """(stack, logical id) -> (type, the name of a named resource) across the nested stacks."""
    found: dict[str, Any] = {}
    for owner in [stack, *nested]:
        where = (
            ""
            if owner is stack
            else stack.resolve(stack.get_logical_id(owner.nested_stack_resource))
        )
        for logical_id, resource in Template.from_stack(owner).to_json()["Resources"].items():
            properties = resource.get("Properties", {})
            name = (
                {key: properties.get(key) for key in ("Name", "UserName", "Path", "LogGroupName")}
                if resource["Type"] in NAMED_TYPES
                else None
            )
            found[f"{where}/{logical_id}"] = (resource["Type"], name)
    return found


def test_a_teams_own_app_keeps_the_repository_apps_logical_ids() -> None:
    context = cdk_json_context()
    context.update(alarmEmail=ALARM_EMAIL)
    repository_app = cdk.App(context=context)
    repository_stack = SesSmtpRotatorStack(
        repository_app, "SesSmtpRotator", settings=load_settings(context)
    )

    feature_flags = {key: value for key, value in context.items() if not SETTING_SHAPE.match(key)}
    team_app = cdk.App(context=feature_flags)
    team_stack = cdk.Stack(
        team_app,
        "MailRotation",
        stack_name="SesSmtpRotator",
        env=cdk.Environment(region="us-east-1"),
    )
    team_rotation = SesSmtpRotation(
        team_stack,
        "Rotation",
        installations=[
            Installation(name="prod", kion_url="https://kion.example.com", ses_region="us-east-1")
        ],
        alarm_email=ALARM_EMAIL,
    )

    ours = resources_by_logical_id(repository_stack, repository_stack.rotation.installation_stacks)
    theirs = resources_by_logical_id(team_stack, team_rotation.installation_stacks)
    assert len(ours) > 40
    assert theirs == ours
    named = [name for kind, name in ours.values() if kind in NAMED_TYPES]
    assert any(name and name["Name"] for name in named), "no named secret compared"
