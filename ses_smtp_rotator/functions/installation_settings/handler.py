"""Writes the settings of one installation into its secret and keeps the credential.

CloudFormation calls it on Create, Update and Delete of the ``InstallationSettings`` custom
resource. The stack names the settings (``Settings``, JSON text); the credential (``username``,
``password``) comes from AWSCURRENT and is never in the template. A settings key the stack stopped
naming (``OldResourceProperties``) is removed; keys the stack never named are kept.

The write is refused while a rotation is in progress: its pending version holds the settings it was
created with, and the rotation would refuse it anyway. Refusing before anything changes makes the
deploy fail with the fix named, and the rollback (the old settings, already current) changes
nothing.

AWSPENDING left by a finished rotation (on AWSCURRENT, where Secrets Manager may leave it, or on
AWSPREVIOUS, where an earlier write carried it) is taken off first: written past, it would sit on
AWSPREVIOUS, and Secrets Manager would refuse every later rotation as one still in progress.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import urllib3
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

logger = Logger(service="ses-smtp-rotator-settings")

CREDENTIAL_FIELDS = ("username", "password")
CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
PREVIOUS = "AWSPREVIOUS"
REASON_LIMIT = 1000


class SettingsWriteError(Exception):
    """The settings cannot be written; the message names the cause and the fix."""


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> None:
    physical_id = event.get("PhysicalResourceId") or event["ResourceProperties"]["SecretId"]
    try:
        physical_id = apply(event, boto3.client("secretsmanager"))
    except Exception as error:
        logger.exception("Installation settings not written", secret_id=physical_id)
        send_response(event, "FAILED", physical_id, reason=str(error))
        return
    send_response(event, "SUCCESS", physical_id)


def apply(event: dict[str, Any], secretsmanager: Any) -> str:
    """Carry out the request; return the physical resource id (the secret's ARN)."""
    properties = event["ResourceProperties"]
    secret_id = properties["SecretId"]
    if event["RequestType"] == "Delete":
        # The secret is the secret resource's to keep or delete.
        return event.get("PhysicalResourceId") or secret_id
    settings = _settings(properties)
    dropped = set()
    if event["RequestType"] == "Update":
        dropped = set(_settings(event.get("OldResourceProperties", {}))) - set(settings)
    current = _current_fields(secretsmanager, secret_id)
    merged = {key: value for key, value in current.items() if key not in dropped}
    merged.update(settings)
    for field in CREDENTIAL_FIELDS:
        merged.setdefault(field, "")
    stages = _release_finished_pending(secretsmanager, secret_id)
    if merged == current:
        logger.info("Installation settings already current", secret_id=secret_id)
        return secret_id
    _require_no_rotation_in_progress(secret_id, stages)
    secretsmanager.put_secret_value(
        SecretId=secret_id,
        SecretString=json.dumps(merged),
        # A repeated delivery of the same request writes the same version once.
        ClientRequestToken=str(uuid.uuid5(uuid.NAMESPACE_URL, event["RequestId"])),
    )
    changed = sorted(
        key for key in set(merged) | set(current) if merged.get(key) != current.get(key)
    )
    logger.info("Installation settings written", secret_id=secret_id, changed=changed)
    return secret_id


def _settings(properties: dict[str, Any]) -> dict[str, Any]:
    raw = properties.get("Settings", "{}")
    settings = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(settings, dict):
        raise SettingsWriteError(
            "The Settings property is not a JSON object. Fix: pass the settings as JSON text."
        )
    # The credential is the rotation's alone: a template never sets it.
    return {key: value for key, value in settings.items() if key not in CREDENTIAL_FIELDS}


def _current_fields(secretsmanager: Any, secret_id: str) -> dict[str, Any]:
    try:
        value = secretsmanager.get_secret_value(SecretId=secret_id, VersionStage=CURRENT)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return {}  # a secret without a value yet
        raise
    try:
        fields = json.loads(value.get("SecretString") or "{}")
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        raise SettingsWriteError(
            f"The AWSCURRENT value of {secret_id} is not a JSON object, so its credential "
            "cannot be kept. Fix: store the installation secret as JSON (see the docs' page The "
            "secrets), then deploy again."
        )
    return fields


def _release_finished_pending(secretsmanager: Any, secret_id: str) -> dict[str, list[str]]:
    """Take AWSPENDING off AWSCURRENT or AWSPREVIOUS (a finished rotation's leftover); return
    the labels of every version as they are then."""
    stages = secretsmanager.describe_secret(SecretId=secret_id).get("VersionIdsToStages", {})
    for version_id, labels in stages.items():
        if PENDING in labels and {CURRENT, PREVIOUS} & set(labels):
            secretsmanager.update_secret_version_stage(
                SecretId=secret_id, VersionStage=PENDING, RemoveFromVersionId=version_id
            )
            labels.remove(PENDING)
            logger.info(
                "Took a finished rotation's AWSPENDING off", secret_id=secret_id, version=version_id
            )
    return stages


def _require_no_rotation_in_progress(secret_id: str, stages: dict[str, list[str]]) -> None:
    pending = sorted(
        version_id
        for version_id, labels in stages.items()
        if PENDING in labels and CURRENT not in labels
    )
    if pending:
        raise SettingsWriteError(
            f"A rotation of {secret_id} is in progress (pending version {pending[0]}); it would "
            "refuse settings changed under it. Fix: let the rotation finish, or abandon it with "
            f"aws secretsmanager update-secret-version-stage --secret-id {secret_id} "
            f"--version-stage AWSPENDING --remove-from-version-id {pending[0]}; then deploy again."
        )


def send_response(
    event: dict[str, Any], status: str, physical_id: str, reason: str | None = None
) -> None:
    """Report the outcome to CloudFormation's pre-signed response URL."""
    body = {
        "Status": status,
        "Reason": (reason or "See the function's log")[:REASON_LIMIT],
        "PhysicalResourceId": physical_id,
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "NoEcho": False,
    }
    response = urllib3.PoolManager().request(
        "PUT",
        event["ResponseURL"],
        body=json.dumps(body).encode(),
        headers={"Content-Type": ""},
        retries=urllib3.Retry(total=3, backoff_factor=0.5),
        timeout=urllib3.Timeout(total=10),
    )
    logger.info("Response sent to CloudFormation", status=status, http_status=response.status)
