"""An installation whose Kion API key renews itself, on loopback servers, and what tests observe.

The renewal runs through a :class:`LocalRotationService` around the real ``lambda_handler`` of
``ses_smtp_rotator.functions.kion_key_renewal.handler``, on the installation's Kion API key
secret (moto).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rotation_world import RotationWorld

from ses_smtp_rotator.functions.kion_key_renewal.handler import lambda_handler as renewal_handler
from ses_smtp_rotator.functions.kion_key_renewal.key_names import key_name, named_by_deployment
from ses_smtp_rotator.local.kion_app_api_keys import AppApiKey
from ses_smtp_rotator.local.rotation_service import (
    STEPS,
    LocalRotationService,
    in_process_function,
)


def renewal_service() -> LocalRotationService:
    return LocalRotationService(in_process_function(renewal_handler))


@dataclass
class KeyRenewalWorld:
    """One installation (its SMTP rotation in ``smtp``) and the renewal of its Kion API key."""

    smtp: RotationWorld
    service: LocalRotationService

    @property
    def kion(self) -> Any:
        return self.smtp.kion

    @property
    def secret_id(self) -> str:
        return self.smtp.installation.kion_api_key_secret_id

    @property
    def secretsmanager(self) -> Any:
        return self.smtp.secretsmanager

    def secret_name(self) -> str:
        return self.secretsmanager.describe_secret(SecretId=self.secret_id)["Name"]

    def key_name(self, version_id: str) -> str:
        """The name this deployment's renewal of ``version_id`` gives its key."""
        described = self.secretsmanager.describe_secret(SecretId=self.secret_id)
        return key_name(described["ARN"], described["Name"], version_id)

    # -- acting ---------------------------------------------------------------------------

    def store_key(self, api_key: str, api_key_id: int | None, **extra: Any) -> None:
        """Store a key as set-kion-key does: with its id and the installation it belongs to."""
        value: dict[str, Any] = {
            "api_key": api_key,
            "installation_secret_id": self.smtp.secret_id,
            **extra,
        }
        if api_key_id is not None:
            value["api_key_id"] = api_key_id
        self.secretsmanager.put_secret_value(
            SecretId=self.secret_id, SecretString=json.dumps(value)
        )

    def start(self, token: str | None = None) -> str:
        return self.service.start(self.secret_id, token)

    def step(self, step: str, token: str) -> None:
        self.service.invoke_step(self.secret_id, token, step)

    def run_steps(self, token: str, steps: tuple[str, ...] = STEPS) -> None:
        for step in steps:
            self.step(step, token)

    def renew(self) -> str:
        return self.service.rotate(self.secret_id)

    # -- observing ------------------------------------------------------------------------

    def version_fields(self, **selector: str) -> dict[str, Any]:
        value = self.secretsmanager.get_secret_value(SecretId=self.secret_id, **selector)
        return json.loads(value["SecretString"])

    def current(self) -> dict[str, Any]:
        return self.version_fields(VersionStage="AWSCURRENT")

    def stages(self) -> dict[str, list[str]]:
        return self.secretsmanager.describe_secret(SecretId=self.secret_id)["VersionIdsToStages"]

    def record(self, key_id: int) -> AppApiKey | None:
        return self.kion.api_keys.records.get(key_id)

    def works(self, api_key: str) -> bool:
        """Whether Kion accepts ``api_key`` now (asked of the stand-in, not over HTTP)."""
        keys = self.kion.api_keys
        return any(r.key == api_key and keys.is_live(r) for r in list(keys.records.values()))

    def current_works(self) -> bool:
        return self.works(self.current()["api_key"])

    def held_key_ids(self) -> set[int]:
        """The Kion key ids AWSCURRENT and AWSPENDING hold."""
        held = set()
        for stage in ("AWSCURRENT", "AWSPENDING"):
            try:
                fields = self.version_fields(VersionStage=stage)
            except self.secretsmanager.exceptions.ResourceNotFoundException:
                continue
            except ValueError:
                continue
            if isinstance(fields, dict) and isinstance(fields.get("api_key_id"), int):
                held.add(fields["api_key_id"])
        return held

    def renewal_keys(self) -> list[AppApiKey]:
        """The keys in Kion named by this deployment's renewals."""
        described = self.secretsmanager.describe_secret(SecretId=self.secret_id)
        return [
            record
            for record in list(self.kion.api_keys.records.values())
            if named_by_deployment(described["ARN"], described["Name"], record.name)
        ]
