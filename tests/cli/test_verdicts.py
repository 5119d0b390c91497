"""The decisions the commands make, as plain functions: when an unfinished rotation may be given
up, which exit code is the worst, and which tagged secrets are installations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.secretsmanager.models import secretsmanager_backends

from ses_smtp_rotator.cli.exit_codes import (
    EXIT_FAILED,
    EXIT_IN_PROGRESS,
    EXIT_OK,
    EXIT_SETUP,
    EXIT_TIMEOUT,
    EXIT_UNCHECKED,
    worst,
)
from ses_smtp_rotator.cli.fleet import (
    DEPLOYMENT_TAG,
    INSTALLATION_TAG,
    list_installations,
    select,
)
from ses_smtp_rotator.functions.quiet_period import GRACE
from ses_smtp_rotator.functions.watch.health import FAILED, RUNNING, STUCK, classify

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TIMEOUT = timedelta(seconds=300)


@pytest.mark.parametrize(
    ("idle", "failed", "state", "may_abandon"),
    [
        (timedelta(seconds=1), False, RUNNING, False),
        (TIMEOUT, False, RUNNING, False),  # an invocation may still be running
        (TIMEOUT + GRACE, False, RUNNING, False),
        (TIMEOUT + GRACE + timedelta(seconds=1), False, STUCK, True),
        (timedelta(seconds=1), True, FAILED, False),  # Secrets Manager may retry it now
        (timedelta(hours=2), True, FAILED, True),
    ],
)
def test_a_rotation_may_be_given_up_only_once_the_function_has_left_it(
    idle, failed, state, may_abandon
):
    assert classify(last_activity=NOW - idle, failed=failed, timeout=TIMEOUT, now=NOW) == (
        state,
        may_abandon,
    )


def test_without_any_sign_of_activity_a_rotation_is_never_given_up():
    assert classify(last_activity=None, failed=False, timeout=TIMEOUT, now=NOW) == (RUNNING, False)


def test_the_worst_exit_code_wins():
    assert worst([]) == EXIT_OK
    assert worst([EXIT_OK, EXIT_IN_PROGRESS]) == EXIT_IN_PROGRESS
    assert worst([EXIT_IN_PROGRESS, EXIT_UNCHECKED, EXIT_OK]) == EXIT_UNCHECKED
    assert worst([EXIT_UNCHECKED, EXIT_TIMEOUT]) == EXIT_TIMEOUT
    assert worst([EXIT_TIMEOUT, EXIT_SETUP]) == EXIT_SETUP
    assert worst([EXIT_SETUP, EXIT_FAILED, EXIT_OK]) == EXIT_FAILED


@mock_aws
def test_installations_are_the_tagged_secrets_with_a_rotation_function():
    secretsmanager = boto3.client("secretsmanager", region_name="us-east-1")
    function = "arn:aws:lambda:us-east-1:123456789012:function:rotator"

    def secret(name: str, installation: str, deployment: str, **details: str) -> str:
        return secretsmanager.create_secret(
            Name=name,
            SecretString="{}",
            Tags=[
                {"Key": INSTALLATION_TAG, "Value": installation},
                {"Key": DEPLOYMENT_TAG, "Value": deployment},
            ],
            **details,
        )["ARN"]

    smtp_a = secret("ses-smtp-rotator/prod/smtp/a", "a", "prod")
    smtp_b = secret("ses-smtp-rotator/prod/smtp/b", "b", "prod")
    secret("ses-smtp-rotator/test/smtp/c", "c", "test")
    secret("ses-smtp-rotator/prod/kion-api-key/a", "a", "prod")
    secret("kion-b-key", "b", "prod", Description="Kion App API key the SES SMTP rotation uses")
    secretsmanager.create_secret(Name="unrelated", SecretString="{}")
    _attach(secretsmanager, function)

    everything = list_installations(secretsmanager)
    prod = list_installations(secretsmanager, deployment="prod")

    assert [item.name for item in everything] == ["a", "b", "c"]
    assert [item.secret_arn for item in prod] == [smtp_a, smtp_b]
    assert [item.name for item in select(everything, ["ses-smtp-rotator/*/smtp/?"])[0]] == [
        "a",
        "b",
        "c",
    ]
    assert select(everything, ["b", "zz*"]) == ([everything[1]], ["zz*"])


def _attach(secretsmanager, function: str) -> None:
    """Rotation attached to every secret but ``unrelated`` (the Kion key secrets too, as once
    their renewal is attached), set on moto's backend: through the API moto would look for the
    function."""
    backend = secretsmanager_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    for entry in secretsmanager.list_secrets()["SecretList"]:
        if entry["Name"] == "unrelated":
            continue
        secret = backend.describe_secret(entry["ARN"])
        secret.rotation_lambda_arn, secret.rotation_enabled = function, True
        secret.rotation_requested = True
