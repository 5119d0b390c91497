"""The calls moto lacks, added by ``local.moto_onboarding``, answer as the API references say:
SES v2's account and identity from the SES SMTP stand-in's state, IAM's policy simulator with
conditions, permissions boundaries and service control policies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from ses_smtp_rotator.local.moto_onboarding import OnboardingCalls
from ses_smtp_rotator.local.smtp_server import SesSmtpServer


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


SEND = {"Effect": "Allow", "Action": "ses:SendRawEmail", "Resource": "*"}


@pytest.fixture
def calls(aws, smtp: SesSmtpServer) -> Iterator[OnboardingCalls]:
    with OnboardingCalls([smtp]) as installed:
        yield installed


def simulate(iam: Any, user_arn: str, sender: str = "kion@example.com") -> dict[str, Any]:
    return iam.simulate_principal_policy(
        PolicySourceArn=user_arn,
        ActionNames=["ses:SendRawEmail"],
        ContextEntries=[
            {
                "ContextKeyName": "ses:FromAddress",
                "ContextKeyValues": [sender],
                "ContextKeyType": "string",
            }
        ],
    )["EvaluationResults"][0]


def sender_user(iam: Any, *statements: dict[str, Any]) -> str:
    arn = iam.create_user(UserName="sender")["User"]["Arn"]
    if statements:
        iam.put_user_policy(UserName="sender", PolicyName="p", PolicyDocument=policy(*statements))
    return arn


def test_get_account_follows_the_stand_ins_sandbox_and_pause(calls, smtp):
    sesv2 = boto3.client("sesv2")
    assert sesv2.get_account()["ProductionAccessEnabled"] is True
    smtp.sandbox, smtp.sending_paused = True, True
    account = sesv2.get_account()
    assert account["ProductionAccessEnabled"] is False
    assert account["SendingEnabled"] is False
    assert account["SendQuota"]["MaxSendRate"] == 1.0


def test_a_region_without_a_stand_in_is_a_new_account_in_the_sandbox(calls):
    assert boto3.client("sesv2", "eu-west-1").get_account()["ProductionAccessEnabled"] is False


def test_get_email_identity_is_verified_where_the_stand_in_accepts_the_sender(calls, smtp):
    sesv2 = boto3.client("sesv2")
    assert sesv2.get_email_identity(EmailIdentity="example.com")["VerifiedForSendingStatus"]
    sesv2.create_email_identity(EmailIdentity="new.example")
    created = sesv2.get_email_identity(EmailIdentity="new.example")
    assert created["VerifiedForSendingStatus"] is False
    assert created["VerificationStatus"] == "PENDING"
    with pytest.raises(sesv2.exceptions.NotFoundException):
        sesv2.get_email_identity(EmailIdentity="nowhere.example")


def test_the_simulator_allows_what_a_policy_allows_for_the_sender_it_names(calls):
    iam = boto3.client("iam")
    condition = {"StringLike": {"ses:FromAddress": "*@example.com"}}
    arn = sender_user(iam, {**SEND, "Condition": condition})
    assert simulate(iam, arn)["EvalDecision"] == "allowed"
    assert simulate(iam, arn, "kion@other.example")["EvalDecision"] == "implicitDeny"


def test_the_simulator_lets_an_explicit_deny_win(calls):
    iam = boto3.client("iam")
    arn = sender_user(iam, SEND, {"Effect": "Deny", "Action": "ses:*", "Resource": "*"})
    assert simulate(iam, arn)["EvalDecision"] == "explicitDeny"


def test_the_simulator_reads_group_and_managed_policies(calls):
    iam = boto3.client("iam")
    arn = sender_user(iam)
    assert simulate(iam, arn)["EvalDecision"] == "implicitDeny"
    iam.create_group(GroupName="senders")
    managed = iam.create_policy(PolicyName="send", PolicyDocument=policy(SEND))["Policy"]["Arn"]
    iam.attach_group_policy(GroupName="senders", PolicyArn=managed)
    iam.add_user_to_group(GroupName="senders", UserName="sender")
    assert simulate(iam, arn)["EvalDecision"] == "allowed"


def test_the_simulator_names_a_permissions_boundary_that_stops_the_send(calls):
    iam = boto3.client("iam")
    arn = sender_user(iam, SEND)
    boundary = iam.create_policy(
        PolicyName="boundary",
        PolicyDocument=policy({"Effect": "Allow", "Action": "iam:*", "Resource": "*"}),
    )["Policy"]["Arn"]
    iam.put_user_permissions_boundary(UserName="sender", PermissionsBoundary=boundary)
    result = simulate(iam, arn)
    assert result["EvalDecision"] == "implicitDeny"
    assert result["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": False}


def test_the_simulator_names_a_service_control_policy_that_denies_the_send(calls):
    organizations = boto3.client("organizations")
    organizations.create_organization(FeatureSet="ALL")
    created = organizations.create_account(AccountName="mail", Email="mail@example.com")
    member = created["CreateAccountStatus"]["AccountId"]
    scp = organizations.create_policy(
        Name="no-ses",
        Type="SERVICE_CONTROL_POLICY",
        Description="",
        Content=policy({"Effect": "Deny", "Action": "ses:*", "Resource": "*"}),
    )["Policy"]["PolicySummary"]["Id"]
    organizations.attach_policy(PolicyId=scp, TargetId=member)
    credentials = boto3.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{member}:role/OrganizationAccountAccessRole",
        RoleSessionName="onboarding",
    )["Credentials"]
    iam = boto3.client(
        "iam",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    arn = sender_user(iam, SEND)
    result = simulate(iam, arn)
    assert result["EvalDecision"] == "explicitDeny"
    assert result["OrganizationsDecisionDetail"] == {"AllowedByOrganizations": False}


def test_the_simulator_honours_the_stand_ins_sender_limit(calls, smtp):
    iam = boto3.client("iam")
    arn = sender_user(iam, SEND)
    smtp.from_addresses["sender"] = {"other@example.com"}
    assert simulate(iam, arn)["EvalDecision"] == "implicitDeny"


def test_the_owner_of_a_key_of_another_account_is_not_found(calls):
    organizations = boto3.client("organizations")
    organizations.create_organization(FeatureSet="ALL")
    member = organizations.create_account(AccountName="other", Email="o@example.com")[
        "CreateAccountStatus"
    ]["AccountId"]
    credentials = boto3.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{member}:role/Admin", RoleSessionName="onboarding"
    )["Credentials"]
    other_iam = boto3.client(
        "iam",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    other_iam.create_user(UserName="elsewhere")
    key = other_iam.create_access_key(UserName="elsewhere")["AccessKey"]["AccessKeyId"]
    assert other_iam.get_access_key_last_used(AccessKeyId=key)["UserName"] == "elsewhere"
    iam = boto3.client("iam")
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_access_key_last_used(AccessKeyId=key)
