"""A deploy that rolls back can be retried: nothing the stack names itself outlives a failed
create, while a stack delete still keeps what the README says it keeps.

CloudFormation's DeletionPolicy semantics, as its reference states them, replayed against moto:
a create that rolls back deletes what it made unless the policy is ``Retain``
(``RetainExceptOnCreate`` and ``Delete`` both delete); a stack delete keeps ``Retain`` and
``RetainExceptOnCreate`` and deletes ``Delete``. A second create of a name that still exists
fails with "already exists".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws
from synthesized_app import Synthesized

RETAINED_ON_ROLLBACK = {"Retain"}
RETAINED_ON_STACK_DELETE = {"Retain", "RetainExceptOnCreate"}
# The properties through which a resource is given a name of the stack's choosing.
NAME_PROPERTIES = {
    "AWS::SecretsManager::Secret": "Name",
    "AWS::IAM::User": "UserName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Scheduler::ScheduleGroup": "Name",
    "AWS::SNS::Topic": "TopicName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::CloudWatch::Alarm": "AlarmName",
}


@dataclass(frozen=True)
class NamedResource:
    logical_id: str
    resource_type: str
    name: str
    deletion_policy: str


def named_resources(app: Synthesized) -> list[NamedResource]:
    """Every resource of every template whose name is fixed in the template (a literal)."""
    found = []
    for template in app.templates.values():
        for logical_id, resource in template.get("Resources", {}).items():
            name = resource.get("Properties", {}).get(NAME_PROPERTIES.get(resource["Type"], ""))
            if isinstance(name, str):
                found.append(
                    NamedResource(
                        logical_id,
                        resource["Type"],
                        name,
                        resource.get("DeletionPolicy", "Delete"),
                    )
                )
    return found


def retained_resources(app: Synthesized) -> Iterator[tuple[str, dict[str, Any]]]:
    for template in app.templates.values():
        for logical_id, resource in template.get("Resources", {}).items():
            if resource.get("DeletionPolicy", "Delete") != "Delete":
                yield logical_id, resource


class MotoAccount:
    """Creates and deletes the named resources CloudFormation would, against moto's APIs."""

    def __init__(self) -> None:
        self.secretsmanager = boto3.client("secretsmanager", region_name="us-east-1")
        self.iam = boto3.client("iam", region_name="us-east-1")
        self.logs = boto3.client("logs", region_name="us-east-1")
        self.scheduler = boto3.client("scheduler", region_name="us-east-1")

    def create(self, resource: NamedResource) -> None:
        match resource.resource_type:
            case "AWS::SecretsManager::Secret":
                self.secretsmanager.create_secret(Name=resource.name, SecretString="{}")
            case "AWS::IAM::User":
                self.iam.create_user(UserName=resource.name)
            case "AWS::Logs::LogGroup":
                self.logs.create_log_group(logGroupName=resource.name)
            case "AWS::Scheduler::ScheduleGroup":
                self.scheduler.create_schedule_group(Name=resource.name)

    def delete(self, resource: NamedResource) -> None:
        match resource.resource_type:
            case "AWS::SecretsManager::Secret":
                # What CloudFormation does on a rollback: the name is free again at once.
                self.secretsmanager.delete_secret(
                    SecretId=resource.name, ForceDeleteWithoutRecovery=True
                )
            case "AWS::IAM::User":
                self.iam.delete_user(UserName=resource.name)
            case "AWS::Logs::LogGroup":
                self.logs.delete_log_group(logGroupName=resource.name)
            case "AWS::Scheduler::ScheduleGroup":
                self.scheduler.delete_schedule_group(Name=resource.name)

    def exists(self, resource: NamedResource) -> bool:
        try:
            match resource.resource_type:
                case "AWS::SecretsManager::Secret":
                    self.secretsmanager.describe_secret(SecretId=resource.name)
                case "AWS::IAM::User":
                    self.iam.get_user(UserName=resource.name)
                case "AWS::Logs::LogGroup":
                    groups = self.logs.describe_log_groups(logGroupNamePrefix=resource.name)
                    return any(g["logGroupName"] == resource.name for g in groups["logGroups"])
                case "AWS::Scheduler::ScheduleGroup":
                    self.scheduler.get_schedule_group(Name=resource.name)
                case _:
                    return False
        except self.secretsmanager.exceptions.ResourceNotFoundException:
            return False
        except self.iam.exceptions.NoSuchEntityException:
            return False
        except self.scheduler.exceptions.ResourceNotFoundException:
            return False
        return True


def create_stack(account: MotoAccount, resources: list[NamedResource]) -> list[str]:
    """A create: each named resource that already exists fails it ("already exists")."""
    already_exist = [r.name for r in resources if account.exists(r)]
    if not already_exist:
        for resource in resources:
            account.create(resource)
    return already_exist


def roll_back_create(account: MotoAccount, resources: list[NamedResource]) -> None:
    for resource in resources:
        if resource.deletion_policy not in RETAINED_ON_ROLLBACK:
            account.delete(resource)


def delete_stack(account: MotoAccount, resources: list[NamedResource]) -> None:
    for resource in resources:
        if resource.deletion_policy not in RETAINED_ON_STACK_DELETE:
            account.delete(resource)


@pytest.fixture
def account() -> Iterator[MotoAccount]:
    with mock_aws():
        yield MotoAccount()


def test_nothing_the_stack_retains_survives_a_rolled_back_create(
    all_apps: dict[str, Synthesized],
) -> None:
    for variant, app in all_apps.items():
        for logical_id, resource in retained_resources(app):
            assert resource["DeletionPolicy"] == "RetainExceptOnCreate", (variant, logical_id)
            assert resource.get("UpdateReplacePolicy") in (None, "Retain", "Delete")


def test_the_named_resources_retained_are_the_secrets_and_the_schedule_group(
    default_app: Synthesized,
) -> None:
    kinds = {r.resource_type for r in named_resources(default_app) if r.deletion_policy != "Delete"}
    assert kinds == {"AWS::SecretsManager::Secret", "AWS::Scheduler::ScheduleGroup"}


def test_a_create_rolled_back_can_be_created_again(
    all_apps: dict[str, Synthesized], account: MotoAccount
) -> None:
    for variant, app in all_apps.items():
        resources = named_resources(app)
        assert create_stack(account, resources) == [], variant
        roll_back_create(account, resources)
        assert create_stack(account, resources) == [], variant
        delete_stack(account, resources)
        for resource in resources:
            if resource.deletion_policy == "RetainExceptOnCreate":
                account.delete(resource)  # the operator cleans up, as the README says


def test_with_plain_retain_the_replay_fails_as_cloudformation_does(
    default_app: Synthesized, account: MotoAccount
) -> None:
    retained = [
        NamedResource(r.logical_id, r.resource_type, r.name, "Retain")
        for r in named_resources(default_app)
        if r.deletion_policy != "Delete"
    ]
    create_stack(account, retained)
    roll_back_create(account, retained)
    assert sorted(create_stack(account, retained)) == sorted(r.name for r in retained)


def test_a_stack_delete_keeps_the_secrets_and_the_schedule_group(
    default_app: Synthesized, account: MotoAccount
) -> None:
    resources = named_resources(default_app)
    create_stack(account, resources)
    delete_stack(account, resources)
    kept = {r.name for r in resources if account.exists(r)}
    assert kept == {
        "ses-smtp-rotator/SesSmtpRotator/smtp/prod",
        "ses-smtp-rotator/SesSmtpRotator/kion-api-key/prod",
        "SesSmtpRotator-Rotation-Schedules-76CAD396",
    }
