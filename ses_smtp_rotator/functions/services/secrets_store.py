"""Secrets Manager: the versions of an installation secret, and the secrets of Kion API keys."""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.exceptions import BotoCoreError, ClientError

from ses_smtp_rotator.functions.errors import KionApiKeyError, RotationStateError
from ses_smtp_rotator.functions.installation_secret import InstallationSecret
from ses_smtp_rotator.functions.services.aws_clients import aws_call, client, error_code

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
PREVIOUS = "AWSPREVIOUS"
ROLLBACK = "ROLLBACK"
"""The label a rollback puts on the version it is restoring, until it has finished: how a
rollback interrupted anywhere knows, when run again, what it was doing."""
_NOT_FOUND = frozenset({"ResourceNotFoundException"})


@dataclass(frozen=True)
class SecretVersion:
    """One version of an installation secret with its staging labels."""

    version_id: str
    stages: tuple[str, ...]
    secret: InstallationSecret = field(repr=False)
    created_at: datetime | None = None


class StagedSecret:
    """One secret whose versions a rotation stages: store a pending version, make it current."""

    def __init__(self, secret_id: str, secretsmanager: Any | None = None) -> None:
        self.secret_id = secret_id
        self._client = secretsmanager or client("secretsmanager")

    def put_pending(self, version_id: str, secret_string: str, rotation_token: str | None) -> None:
        """Store ``secret_string`` as the AWSPENDING version ``version_id``."""
        request: dict[str, Any] = {
            "SecretId": self.secret_id,
            "ClientRequestToken": version_id,
            "SecretString": secret_string,
            "VersionStages": [PENDING],
        }
        if rotation_token:
            request["RotationToken"] = rotation_token
        with aws_call("secretsmanager:PutSecretValue", self.secret_id):
            self._client.put_secret_value(**request)

    def put_labelled(self, version_id: str, secret_string: str, stage: str) -> None:
        """Store ``secret_string`` as version ``version_id`` labelled ``stage`` (and nothing
        else); storing the same value under the same id again changes nothing."""
        with aws_call("secretsmanager:PutSecretValue", self.secret_id):
            self._client.put_secret_value(
                SecretId=self.secret_id,
                ClientRequestToken=version_id,
                SecretString=secret_string,
                VersionStages=[stage],
            )

    def label(self, version_id: str, stage: str) -> None:
        """Put the label ``stage`` on ``version_id`` (taking it off any other version)."""
        with aws_call("secretsmanager:UpdateSecretVersionStage", self.secret_id):
            self._client.update_secret_version_stage(
                SecretId=self.secret_id, VersionStage=stage, MoveToVersionId=version_id
            )

    def unlabel(self, version_id: str, stage: str) -> None:
        """Take the label ``stage`` off ``version_id``."""
        with aws_call("secretsmanager:UpdateSecretVersionStage", self.secret_id):
            self._client.update_secret_version_stage(
                SecretId=self.secret_id, VersionStage=stage, RemoveFromVersionId=version_id
            )

    def make_current(self, version_id: str, current_version_id: str) -> dict[str, Any]:
        """Move AWSCURRENT from ``current_version_id`` to ``version_id``, then take AWSPENDING
        off ``version_id``; returns the secret's description read after the move (labels and
        tags), which the step's next checks use instead of reading it again."""
        with aws_call("secretsmanager:UpdateSecretVersionStage", self.secret_id):
            self._client.update_secret_version_stage(
                SecretId=self.secret_id,
                VersionStage=CURRENT,
                MoveToVersionId=version_id,
                RemoveFromVersionId=current_version_id,
            )
        return self.release_pending(version_id)

    def release_pending(self, version_id: str) -> dict[str, Any]:
        """Take AWSPENDING off ``version_id``, a finished rotation's version, if it still has it;
        returns the secret's description read before (labels and tags).

        Moving AWSCURRENT onto a version may leave AWSPENDING there. A later PutSecretValue
        with AWSCURRENT (a settings deploy, ``set-kion-key``) would then leave it on AWSPREVIOUS,
        where Secrets Manager takes it for a rotation in progress and refuses every new one."""
        with aws_call("secretsmanager:DescribeSecret", self.secret_id):
            described: dict[str, Any] = self._client.describe_secret(SecretId=self.secret_id)
        if PENDING in described.get("VersionIdsToStages", {}).get(version_id, []):
            with aws_call("secretsmanager:UpdateSecretVersionStage", self.secret_id):
                self._client.update_secret_version_stage(
                    SecretId=self.secret_id, VersionStage=PENDING, RemoveFromVersionId=version_id
                )
        return described


class InstallationSecrets(StagedSecret):
    """Reads and stages the versions of one installation secret."""

    def version_stages(self) -> dict[str, list[str]]:
        """Every version id with its staging labels."""
        with aws_call("secretsmanager:DescribeSecret", self.secret_id):
            try:
                description = self._client.describe_secret(SecretId=self.secret_id)
            except ClientError as error:
                if error_code(error) in _NOT_FOUND:
                    raise RotationStateError(
                        f"Secret {self.secret_id} does not exist.",
                        "Invoke the rotation with the id of an existing installation secret.",
                    ) from None
                raise
        return description.get("VersionIdsToStages", {})

    def tags(self) -> dict[str, str]:
        """The secret's tags (DescribeSecret), by key."""
        with aws_call("secretsmanager:DescribeSecret", self.secret_id):
            described = self._client.describe_secret(SecretId=self.secret_id)
        return tags_of(described)

    def tag(self, key: str, value: str) -> None:
        """Set one tag on the secret (its other tags stay)."""
        with aws_call("secretsmanager:TagResource", self.secret_id):
            self._client.tag_resource(SecretId=self.secret_id, Tags=[{"Key": key, "Value": value}])

    def untag(self, *keys: str) -> None:
        """Remove tags from the secret; a tag that is not there is fine."""
        if keys:
            with aws_call("secretsmanager:UntagResource", self.secret_id):
                self._client.untag_resource(SecretId=self.secret_id, TagKeys=list(keys))

    def version(self, version_id: str) -> SecretVersion | None:
        """The version ``version_id``, or None when it has no value yet."""
        return self._get(VersionId=version_id)

    def current(self) -> SecretVersion:
        version = self._get(VersionStage=CURRENT)
        if version is None:
            raise RotationStateError(
                f"Secret {self.secret_id} has no AWSCURRENT value.",
                "Store the installation settings in the secret (see the docs' page The secrets).",
            )
        return version

    def previous(self) -> SecretVersion | None:
        """The AWSPREVIOUS version (the one AWSCURRENT replaced), or None."""
        return self._get(VersionStage=PREVIOUS)

    def labelled_key_ids(self, *stages: str) -> dict[str, str]:
        """The access key ids held by versions carrying any of ``stages``, each with its labels."""
        held: dict[str, str] = {}
        for version_id, labels in self.version_stages().items():
            wanted = [label for label in labels if label in stages]
            version = self.version(version_id) if wanted else None
            if version is not None and version.secret.access_key_id:
                held[version.secret.access_key_id] = ", ".join(wanted)
        return held

    def find_credential(self, access_key_id: str) -> SecretVersion | None:
        """The newest version whose credential uses ``access_key_id``, labelled or not."""
        return next((v for v in self._versions() if v.secret.access_key_id == access_key_id), None)

    def records(self, access_key_id: str) -> bool:
        """True when a version of this secret, labelled or not, used ``access_key_id`` or
        replaced it (on adoption, the key Kion held): a key of this installation."""
        return any(
            access_key_id in (v.secret.access_key_id, v.secret.replaces) for v in self._versions()
        )

    def adopted(self, access_key_id: str) -> bool:
        """True when the versions record ``access_key_id`` only as the key Kion held when a
        rotation adopted it, never as a credential of theirs: a key this product did not make,
        which may serve other consumers too."""
        versions = list(self._versions())
        return any(v.secret.replaces == access_key_id for v in versions) and not any(
            v.secret.access_key_id == access_key_id for v in versions
        )

    def _versions(self) -> Iterator[SecretVersion]:
        """Every version with a value, newest first."""
        listed: list[dict[str, Any]] = []
        request: dict[str, Any] = {"SecretId": self.secret_id, "IncludeDeprecated": True}
        with aws_call("secretsmanager:ListSecretVersionIds", self.secret_id):
            while True:
                page = self._client.list_secret_version_ids(**request)
                listed.extend(page.get("Versions", []))
                if not page.get("NextToken"):
                    break
                request["NextToken"] = page["NextToken"]
        listed.sort(key=lambda entry: entry.get("CreatedDate") or 0, reverse=True)
        for entry in listed:
            version = self.version(entry["VersionId"])
            if version is not None:
                yield version

    def _get(self, **selector: str) -> SecretVersion | None:
        with aws_call("secretsmanager:GetSecretValue", self.secret_id):
            try:
                response = self._client.get_secret_value(SecretId=self.secret_id, **selector)
            except ClientError as error:
                if error_code(error) in _NOT_FOUND:
                    return None
                raise
        return SecretVersion(
            version_id=response["VersionId"],
            stages=tuple(response.get("VersionStages", ())),
            secret=InstallationSecret.parse(response.get("SecretString")),
            created_at=response.get("CreatedDate"),
        )


def tags_of(described: dict[str, Any]) -> dict[str, str]:
    """The tags in a DescribeSecret reply, by key."""
    return {tag["Key"]: tag.get("Value", "") for tag in described.get("Tags", [])}


_PROVIDERS: weakref.WeakKeyDictionary[Any, SecretsProvider] = weakref.WeakKeyDictionary()


def _provider_for(secretsmanager: Any) -> SecretsProvider:
    """One Powertools provider per client: making a provider registers a user-agent handler on
    its client, so a provider made per reader would leave the shared client running one more
    handler on every request after each installation a warm function checks."""
    if secretsmanager not in _PROVIDERS:
        _PROVIDERS[secretsmanager] = SecretsProvider(boto3_client=secretsmanager)
    return _PROVIDERS[secretsmanager]


class KionApiKeys:
    """Reads Kion App API keys, cached for ``cache_seconds`` so one rotation reads each key once
    (``0``: every read goes to Secrets Manager)."""

    def __init__(self, cache_seconds: int, secretsmanager: Any | None = None) -> None:
        self._provider = _provider_for(secretsmanager or client("secretsmanager"))
        # A new reader starts with nothing cached: the provider it shares with earlier readers
        # of the same client forgets what they read.
        self._provider.clear_cache()
        self._cache_seconds = cache_seconds

    def api_key(self, secret_id: str, *, fresh: bool = False) -> str:
        """The key stored in ``secret_id``, as a plain string or as JSON {"api_key": "..."};
        ``fresh`` reads AWSCURRENT again instead of the cached value."""
        with aws_call("secretsmanager:GetSecretValue", secret_id):
            try:
                # AWSCURRENT named: moto (unlike AWS) leaves the unnamed default on the version
                # a rotation moved AWSCURRENT away from.
                stored = self._provider.get(
                    secret_id,
                    max_age=self._cache_seconds,
                    force_fetch=fresh or not self._cache_seconds,
                    VersionStage=CURRENT,
                )
            except Exception as error:  # Powertools wraps botocore's errors in its own
                cause = error.__cause__ or error.__context__ or error
                if isinstance(cause, ClientError) and error_code(cause) in _NOT_FOUND:
                    raise KionApiKeyError(
                        f"The Kion API key secret {secret_id} does not exist or has no value.",
                        "Create it, or set kion_api_key_secret_id to the right secret, and put "
                        "a Kion App API key into it.",
                    ) from None
                if isinstance(cause, ClientError | BotoCoreError):
                    raise cause from None  # for aws_call to name cause and fix
                raise
        return _parse_api_key(secret_id, stored)


def _parse_api_key(secret_id: str, stored: Any) -> str:
    fix = f'Put the Kion App API key into {secret_id} as plain text or as {{"api_key": "<key>"}}.'
    text = stored.decode() if isinstance(stored, bytes) else str(stored or "")
    text = text.strip()
    if text.startswith("{"):
        try:
            stored_fields = json.loads(text)
        except ValueError:
            raise KionApiKeyError(
                f"The Kion API key secret {secret_id} holds JSON that cannot be read.", fix
            ) from None
        if not isinstance(stored_fields, dict) or "api_key" not in stored_fields:
            raise KionApiKeyError(
                f"The Kion API key secret {secret_id} holds JSON without an 'api_key' field.", fix
            )
        text = stored_fields["api_key"]
        if not isinstance(text, str):
            raise KionApiKeyError(f"'api_key' in {secret_id} is not a string.", fix)
        text = text.strip()
    if not text:
        raise KionApiKeyError(f"The Kion API key secret {secret_id} is empty.", fix)
    if any(ch.isspace() for ch in text):
        raise KionApiKeyError(
            f"The Kion API key secret {secret_id} does not hold a single key (it has spaces).", fix
        )
    return text
