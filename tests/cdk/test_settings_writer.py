"""The settings writer, run the way CloudFormation runs a custom resource (Create, then Update
events, each answered on a pre-signed URL), against moto: a settings change keeps the credential,
the rotation function still reads the secret, and a rotation in progress is left alone."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest

from ses_smtp_rotator.functions.installation_settings.handler import lambda_handler
from ses_smtp_rotator.functions.services.secrets_store import InstallationSecrets
from ses_smtp_rotator.local.rotation_service import LambdaContextStub

NAME = "ses-smtp-rotator/Test/smtp/prod"
USERNAME = "AKIAEXAMPLEKEY000001"
PASSWORD = "BExamplePasswordDerivedForUsEast1+/=0000000"
SETTINGS = {
    "ses_region": "us-east-1",
    "iam_user_name": "kion-prod-smtp",
    "kion_url": "https://kion.example.com",
    "kion_api_key_secret_id": "arn:aws:secretsmanager:us-east-1:123456789012:secret:k-AbCdEf",
    "smtp_host": "email-smtp.us-east-1.amazonaws.com",
    "smtp_port": 587,
    "send_path_check": True,
    "iam_user_dedicated": True,
    "kion_ca_bundle": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
}


class CloudFormationResponses:
    """A loopback stand-in for CloudFormation's pre-signed response URL: records each answer."""

    def __init__(self) -> None:
        answers: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers["Content-Length"])
                answers.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.answers = answers
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/response"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def responses() -> Iterator[CloudFormationResponses]:
    server = CloudFormationResponses()
    yield server
    server.close()


@pytest.fixture
def secret_arn(aws: None) -> str:
    """The installation secret as the stack creates it: a constant first value, tagged."""
    return boto3.client("secretsmanager").create_secret(
        Name=NAME,
        SecretString="{}",
        Tags=[{"Key": "ses-smtp-rotator:deployment", "Value": "Test"}],
    )["ARN"]


def event(
    request: str,
    secret_arn: str,
    url: str,
    settings: dict[str, Any],
    old: dict[str, Any] | None = None,
    request_id: str = "req-1",
) -> dict[str, Any]:
    properties = {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:writer"}
    found: dict[str, Any] = {
        "RequestType": request,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/Test-Installations/1",
        "RequestId": request_id,
        "LogicalResourceId": "InstallationprodSettings",
        "ResourceType": "Custom::InstallationSettings",
        # CloudFormation passes every property as text.
        "ResourceProperties": {
            **properties,
            "SecretId": secret_arn,
            "Settings": json.dumps(settings),
        },
    }
    if request != "Create":
        found["PhysicalResourceId"] = secret_arn
    if old is not None:
        found["OldResourceProperties"] = {
            **properties,
            "SecretId": secret_arn,
            "Settings": json.dumps(old),
        }
    return found


def current(secret_arn: str) -> dict[str, Any]:
    value = boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)
    return json.loads(value["SecretString"])


def store_credential(secret_arn: str) -> None:
    """What a finished rotation leaves: AWSCURRENT with the credential and the settings."""
    boto3.client("secretsmanager").put_secret_value(
        SecretId=secret_arn,
        SecretString=json.dumps(
            {**current(secret_arn), "username": USERNAME, "password": PASSWORD}
        ),
    )


def version_count(secret_arn: str) -> int:
    stages = boto3.client("secretsmanager").describe_secret(SecretId=secret_arn)
    return len(stages["VersionIdsToStages"])


def test_create_writes_the_settings_with_an_empty_credential(
    secret_arn: str, responses: CloudFormationResponses
) -> None:
    lambda_handler(event("Create", secret_arn, responses.url, SETTINGS), LambdaContextStub())
    (answer,) = responses.answers
    assert answer["Status"] == "SUCCESS"
    assert answer["PhysicalResourceId"] == secret_arn
    assert answer["LogicalResourceId"] == "InstallationprodSettings"
    assert current(secret_arn) == {**SETTINGS, "username": "", "password": ""}
    # The rotation function reads it (the configuration check runs on it at deploy).
    secret = InstallationSecrets(secret_arn).current().secret
    assert secret.kion_url == "https://kion.example.com"
    assert secret.username == ""


def test_a_settings_change_keeps_the_credential_and_what_the_stack_never_named(
    secret_arn: str, responses: CloudFormationResponses, capsys: pytest.CaptureFixture[str]
) -> None:
    lambda_handler(event("Create", secret_arn, responses.url, SETTINGS), LambdaContextStub())
    store_credential(secret_arn)
    client = boto3.client("secretsmanager")
    # An operator's own field, which no template names.
    client.put_secret_value(
        SecretId=secret_arn,
        SecretString=json.dumps({**current(secret_arn), "smtp_tls": "starttls"}),
    )
    changed = {k: v for k, v in SETTINGS.items() if k != "kion_ca_bundle"}
    changed.update(kion_url="https://kion-new.example.com", smtp_port=2587)

    lambda_handler(
        event("Update", secret_arn, responses.url, changed, old=SETTINGS, request_id="req-2"),
        LambdaContextStub(),
    )

    assert [answer["Status"] for answer in responses.answers] == ["SUCCESS", "SUCCESS"]
    value = current(secret_arn)
    assert value == {**changed, "username": USERNAME, "password": PASSWORD, "smtp_tls": "starttls"}
    assert "kion_ca_bundle" not in value  # the stack stopped naming it
    secret = InstallationSecrets(secret_arn).current().secret
    assert (secret.username, secret.password) == (USERNAME, PASSWORD)
    assert (secret.kion_url, secret.smtp_port) == ("https://kion-new.example.com", 2587)
    captured = capsys.readouterr()
    assert PASSWORD not in captured.out + captured.err
    assert PASSWORD not in json.dumps(responses.answers)


def test_an_unchanged_deploy_writes_no_version(
    secret_arn: str, responses: CloudFormationResponses
) -> None:
    lambda_handler(event("Create", secret_arn, responses.url, SETTINGS), LambdaContextStub())
    store_credential(secret_arn)
    versions = version_count(secret_arn)
    lambda_handler(
        event("Update", secret_arn, responses.url, SETTINGS, old=SETTINGS, request_id="req-2"),
        LambdaContextStub(),
    )
    assert responses.answers[-1]["Status"] == "SUCCESS"
    assert version_count(secret_arn) == versions


def test_a_rotation_in_progress_refuses_the_change_and_the_rollback_succeeds(
    secret_arn: str, responses: CloudFormationResponses
) -> None:
    lambda_handler(event("Create", secret_arn, responses.url, SETTINGS), LambdaContextStub())
    store_credential(secret_arn)
    before = current(secret_arn)
    # createSecret of a rotation: AWSPENDING holds a new credential with today's settings.
    boto3.client("secretsmanager").put_secret_value(
        SecretId=secret_arn,
        ClientRequestToken="rotation-token-0000000000000000001",
        SecretString=json.dumps({**before, "username": "AKIAEXAMPLEKEY000002", "password": "x"}),
        VersionStages=["AWSPENDING"],
    )
    changed = {**SETTINGS, "kion_url": "https://kion-new.example.com"}

    update = event("Update", secret_arn, responses.url, changed, old=SETTINGS, request_id="req-2")
    lambda_handler(update, LambdaContextStub())

    answer = responses.answers[-1]
    assert answer["Status"] == "FAILED"
    assert "rotation of" in answer["Reason"]
    assert "rotation-token-0000000000000000001" in answer["Reason"]
    assert "Fix: let the rotation finish, or abandon it" in answer["Reason"]
    assert current(secret_arn) == before  # the pending version still matches AWSCURRENT

    # CloudFormation rolls back: an Update back to the settings still current changes nothing.
    rollback = event("Update", secret_arn, responses.url, SETTINGS, old=changed, request_id="req-3")
    lambda_handler(rollback, LambdaContextStub())
    assert responses.answers[-1]["Status"] == "SUCCESS"
    assert current(secret_arn) == before


def test_delete_leaves_the_secret_to_its_own_resource(
    secret_arn: str, responses: CloudFormationResponses
) -> None:
    lambda_handler(event("Create", secret_arn, responses.url, SETTINGS), LambdaContextStub())
    store_credential(secret_arn)
    before = current(secret_arn)
    lambda_handler(event("Delete", secret_arn, responses.url, SETTINGS), LambdaContextStub())
    assert responses.answers[-1] == {
        **responses.answers[-1],
        "Status": "SUCCESS",
        "PhysicalResourceId": secret_arn,
    }
    assert current(secret_arn) == before


def test_a_secret_that_is_not_json_fails_the_deploy_naming_the_fix(
    secret_arn: str, responses: CloudFormationResponses
) -> None:
    boto3.client("secretsmanager").put_secret_value(SecretId=secret_arn, SecretString="not json")
    lambda_handler(event("Create", secret_arn, responses.url, SETTINGS), LambdaContextStub())
    answer = responses.answers[-1]
    assert answer["Status"] == "FAILED"
    assert "is not a JSON object, so its credential cannot be kept. Fix:" in answer["Reason"]
