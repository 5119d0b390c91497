"""What Secrets Manager says about an installation secret: its versions and their labels, the
rotation function attached to it, and when it was last rotated."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ses_smtp_rotator.cli.aws_access import SetupError, asking
from ses_smtp_rotator.functions.errors import RotationError
from ses_smtp_rotator.functions.installation_secret import InstallationSecret

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
PREVIOUS = "AWSPREVIOUS"
ROLLBACK = "ROLLBACK"
# How the stack's Kion API key secrets are told from installation secrets without reading them:
# the construct id in CloudFormation's logical-id tag, the name and the description it gives them.
_LOGICAL_ID_TAG = "aws:cloudformation:logical-id"
_API_KEY_LOGICAL_ID = "KionApiKey"
_API_KEY_NAME_PART = "/kion-api-key/"
_API_KEY_DESCRIPTION = "Kion App API key"


@dataclass(frozen=True)
class SecretState:
    """One DescribeSecret answer, in the terms a rotation needs."""

    arn: str
    name: str
    stages: dict[str, list[str]]
    function_arn: str | None
    rotation_enabled: bool
    last_rotated: datetime | None
    next_rotation: datetime | None
    description: str = ""
    tags: tuple[tuple[str, str], ...] = ()

    @property
    def named_as_kion_api_key(self) -> bool:
        """Whether its name, description or CloudFormation logical id mark the secret as a Kion
        API key secret of the stack."""
        return named_as_kion_api_key(self.name, self.description, dict(self.tags))

    @property
    def current_version(self) -> str | None:
        return next((vid for vid, labels in self.stages.items() if CURRENT in labels), None)

    @property
    def pending_version(self) -> str | None:
        """The AWSPENDING version apart from AWSCURRENT: a rotation that has not finished."""
        return next(
            (
                vid
                for vid, labels in self.stages.items()
                if PENDING in labels and CURRENT not in labels
            ),
            None,
        )

    @property
    def rollback_version(self) -> str | None:
        """The version labelled ROLLBACK: a rollback that has not finished (the rotation
        function takes the label off when it does)."""
        return next((vid for vid, labels in self.stages.items() if ROLLBACK in labels), None)

    @property
    def function_name(self) -> str | None:
        """The rotation function's name, from its ARN."""
        if not self.function_arn:
            return None
        return self.function_arn.split(":function:", 1)[-1].split(":", 1)[0]


def read_state(secretsmanager: Any, secret_id: str) -> SecretState:
    """DescribeSecret for ``secret_id``; raises SetupError when it cannot be read."""
    with asking("secretsmanager:DescribeSecret", f"secret {secret_id}"):
        described = secretsmanager.describe_secret(SecretId=secret_id)
    return SecretState(
        arn=described["ARN"],
        name=described.get("Name", secret_id),
        stages={
            vid: list(labels) for vid, labels in described.get("VersionIdsToStages", {}).items()
        },
        function_arn=described.get("RotationLambdaARN") or None,
        rotation_enabled=bool(described.get("RotationEnabled")),
        last_rotated=as_utc(described.get("LastRotatedDate")),
        next_rotation=as_utc(described.get("NextRotationDate")),
        description=str(described.get("Description") or ""),
        tags=tuple(
            (str(tag.get("Key")), str(tag.get("Value"))) for tag in described.get("Tags", [])
        ),
    )


def kion_key_secret_state(secretsmanager: Any, state: SecretState) -> SecretState | None:
    """The installation's Kion API key secret, when its AWSCURRENT names one that can be read."""
    try:
        value = secretsmanager.get_secret_value(SecretId=state.arn, VersionStage=CURRENT)
        key_secret_id = json.loads(value.get("SecretString") or "{}").get("kion_api_key_secret_id")
    except (ClientError, BotoCoreError, ValueError, AttributeError):
        return None
    if not key_secret_id:
        return None
    try:
        return read_state(secretsmanager, key_secret_id)
    except SetupError:
        return None


def named_as_kion_api_key(name: str, description: str, tags: dict[str, str]) -> bool:
    return (
        _API_KEY_NAME_PART in name
        or description.startswith(_API_KEY_DESCRIPTION)
        or _API_KEY_LOGICAL_ID in tags.get(_LOGICAL_ID_TAG, "")
    )


def require_installation_secret(state: SecretState) -> None:
    """Raise the SetupError ``rotate`` and ``status`` give for a secret that is not an
    installation secret: one the stack names as a Kion API key secret, or one no rotation
    function is attached to. Reads no secret value."""
    if state.named_as_kion_api_key:
        raise wrong_kind_error(state)
    if not state.function_arn:
        raise SetupError(
            f"Secret {state.name} has no rotation function attached, so RotateSecret cannot "
            "rotate it: it is not the installation secret of a deployed stack.",
            "Name the installation secret (the stack output <Name>SecretArn, or "
            "`ses-smtp-rotator list`), not the Kion API key secret; or deploy the stack with this "
            "installation in cdk.json, which attaches the rotation function.",
        )


def wrong_kind_error(state: SecretState) -> SetupError:
    """The SetupError for a secret whose value is a Kion App API key, not installation settings."""
    return SetupError(
        f"Secret {state.name} holds a Kion App API key, not an installation's SMTP credential and "
        "settings.",
        "Name the installation secret (the stack output <Name>SecretArn, or "
        "`ses-smtp-rotator list`). To renew the Kion API key now instead, run "
        f"`aws secretsmanager rotate-secret --secret-id {state.arn}`; to store a new one, "
        "`ses-smtp-rotator set-kion-key`.",
    )


def looks_like_kion_api_key(secret_string: str | None) -> bool:
    """True for the shapes a Kion API key secret has: JSON with ``api_key`` and no installation
    settings, or one bare token."""
    text = (secret_string or "").strip()
    if not text:
        return False
    if text.startswith("{"):
        try:
            fields = json.loads(text)
        except ValueError:
            return False
        return isinstance(fields, dict) and "api_key" in fields and "kion_url" not in fields
    return not any(character.isspace() for character in text)


def version_created(secretsmanager: Any, secret_id: str, version_id: str) -> datetime | None:
    """When a version was created (ListSecretVersionIds), None when unknown."""
    request: dict[str, Any] = {"SecretId": secret_id, "IncludeDeprecated": True}
    with asking("secretsmanager:ListSecretVersionIds", f"secret {secret_id}"):
        while True:
            page = secretsmanager.list_secret_version_ids(**request)
            for entry in page.get("Versions", []):
                if entry.get("VersionId") == version_id:
                    return as_utc(entry.get("CreatedDate"))
            if not page.get("NextToken"):
                break
            request["NextToken"] = page["NextToken"]
    return None


def abandon_command(state: SecretState) -> str:
    """The command that gives up the secret's unfinished rotation (``abandon``)."""
    return f"ses-smtp-rotator abandon {state.name}"


def as_utc(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and value > 0:
        return datetime.fromtimestamp(value, UTC)
    return None


def read_installation(secretsmanager: Any, secret_id: str) -> tuple[str, InstallationSecret]:
    """The ARN and the parsed AWSCURRENT of an installation secret; a Kion API key secret named
    instead is refused before any advice about its fields."""
    with asking("secretsmanager:GetSecretValue", f"secret {secret_id}"):
        value = secretsmanager.get_secret_value(SecretId=secret_id, VersionStage=CURRENT)
    if looks_like_kion_api_key(value.get("SecretString")):
        # Advice about missing settings would damage this secret: it is the key's own.
        raise SetupError(
            f"Secret {value.get('Name', secret_id)} is a Kion API key secret, not an "
            "installation secret.",
            "Name the installation secret whose kion_api_key_secret_id is this secret (the "
            "stack output <Name>SecretArn, or `ses-smtp-rotator list`), or the installation's "
            "name: set-kion-key checks the key against that installation's Kion and stores it "
            "here itself. Change nothing in this secret by hand.",
        )
    try:
        return value["ARN"], InstallationSecret.parse(value.get("SecretString"))
    except RotationError as error:
        raise SetupError(error.cause, error.fix) from None
