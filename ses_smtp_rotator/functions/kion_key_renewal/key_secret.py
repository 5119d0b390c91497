"""The Kion API key secret: its versions, each a key with its Kion id and installation.

A version holds the key as plain text or as JSON ``{"api_key": "...", "api_key_id": <int>,
"installation_secret_id": "..."}``. ``api_key_id`` is the key's id in Kion (absent for a key pasted
by hand); ``installation_secret_id`` names the installation secret whose ``kion_url`` the key
belongs to (written by ``ses-smtp-rotator set-kion-key``). A renewal keeps every other field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ses_smtp_rotator.functions.errors import KionApiKeyError, RotationStateError
from ses_smtp_rotator.functions.services.aws_clients import aws_call, error_code
from ses_smtp_rotator.functions.services.secrets_store import (
    CURRENT,
    PENDING,
    StagedSecret,
    _parse_api_key,
)

PREVIOUS = "AWSPREVIOUS"

SET_KION_KEY = "ses-smtp-rotator set-kion-key <installation secret>"


@dataclass(frozen=True)
class StoredApiKey:
    """One stored value of the Kion API key secret."""

    api_key: str = field(repr=False)  # "" while the secret waits for its first key
    api_key_id: int | None
    installation_secret_id: str | None
    fields: dict[str, Any] = field(repr=False)

    @classmethod
    def parse(cls, secret_id: str, secret_string: str | None) -> StoredApiKey:
        text = (secret_string or "").strip()
        fields: dict[str, Any] = {}
        if text.startswith("{"):
            try:
                loaded = json.loads(text)
            except ValueError:
                loaded = None
            fields = loaded if isinstance(loaded, dict) else {}
        placeholder = not text or fields.get("api_key") == ""  # no key stored yet
        api_key = "" if placeholder else _parse_api_key(secret_id, text)
        key_id = fields.get("api_key_id")
        installation = fields.get("installation_secret_id")
        return cls(
            api_key=api_key,
            api_key_id=key_id if isinstance(key_id, int) and not isinstance(key_id, bool) else None,
            installation_secret_id=installation if isinstance(installation, str) else None,
            fields=fields,
        )

    def with_key(self, api_key: str, api_key_id: int | None) -> str:
        """This value with another key and id, as the JSON to store."""
        replaced = {**self.fields, "api_key": api_key, "api_key_id": api_key_id}
        return json.dumps({name: value for name, value in replaced.items() if value is not None})


@dataclass(frozen=True)
class StoredVersion:
    version_id: str
    stages: tuple[str, ...]
    stored: StoredApiKey = field(repr=False)


@dataclass(frozen=True)
class SecretIdentity:
    arn: str
    name: str
    stages: dict[str, list[str]]


class ApiKeySecret(StagedSecret):
    """Reads and stages the versions of one Kion API key secret."""

    def describe(self) -> SecretIdentity:
        """The secret's ARN, name and version stages."""
        with aws_call("secretsmanager:DescribeSecret", self.secret_id):
            try:
                described = self._client.describe_secret(SecretId=self.secret_id)
            except ClientError as error:
                if error_code(error) == "ResourceNotFoundException":
                    raise RotationStateError(
                        f"Secret {self.secret_id} does not exist.",
                        "Invoke the renewal with the id of an existing Kion API key secret.",
                    ) from None
                raise
        return SecretIdentity(
            described["ARN"], described["Name"], described.get("VersionIdsToStages", {})
        )

    def version(self, version_id: str) -> StoredVersion | None:
        return self._get(VersionId=version_id)

    def labelled(self, stage: str) -> StoredVersion | None:
        return self._get(VersionStage=stage)

    def current(self) -> StoredVersion:
        version = self.labelled(CURRENT)
        if version is None or not version.stored.api_key:
            raise KionApiKeyError(
                f"The Kion API key secret {self.secret_id} holds no key yet.",
                f"Store a Kion App API key in it with: {SET_KION_KEY}.",
            )
        return version

    def held_key_ids(self) -> set[int]:
        """The Kion key ids that AWSCURRENT and AWSPENDING hold: the keys that must live."""
        held = (self.labelled(CURRENT), self.labelled(PENDING))
        return {v.stored.api_key_id for v in held if v and v.stored.api_key_id is not None}

    def start_renewal(self) -> str:
        """Start a renewal (RotateSecret with the rotation attached to the secret); returns the
        new version's id. Secrets Manager refuses while another rotation is still pending."""
        with aws_call("secretsmanager:RotateSecret", self.secret_id):
            return self._client.rotate_secret(SecretId=self.secret_id)["VersionId"]

    def _get(self, **selector: str) -> StoredVersion | None:
        with aws_call("secretsmanager:GetSecretValue", self.secret_id):
            try:
                response = self._client.get_secret_value(SecretId=self.secret_id, **selector)
            except ClientError as error:
                if error_code(error) == "ResourceNotFoundException":
                    return None
                raise
        return StoredVersion(
            response["VersionId"],
            tuple(response.get("VersionStages", ())),
            StoredApiKey.parse(self.secret_id, response.get("SecretString")),
        )
