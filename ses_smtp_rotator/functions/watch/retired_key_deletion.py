"""The watch's one change to an installation besides the Kion key renewal: delete the retired
access keys whose rollback window has passed, each only once every condition of
``retired_keys`` holds, read again right before its delete (Kion included)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.installation_secret import InstallationSecret
from ses_smtp_rotator.functions.retired_keys import KeyRetirement
from ses_smtp_rotator.functions.services.account_access import user_access_keys
from ses_smtp_rotator.functions.services.kion_settings import KionClient
from ses_smtp_rotator.functions.services.secrets_store import InstallationSecrets, KionApiKeys
from ses_smtp_rotator.functions.telemetry import logger


def delete_retired_keys(
    secret_id: str,
    config: RotationConfig,
    *,
    now: datetime,
    secretsmanager: Any | None = None,
    iam: Any | None = None,
) -> dict[str, str | None]:
    """Each retired key whose window has passed, with why it was kept (None: deleted)."""
    secrets = InstallationSecrets(secret_id, secretsmanager)
    current = secrets.current().secret
    retirement = KeyRetirement(
        secrets,
        user_access_keys(current, secret_id, iam),
        grace=timedelta(days=config.previous_key_grace_days),
        dedicated_user=current.iam_user_dedicated,
        now=lambda: now,
    )
    outcomes: dict[str, str | None] = {}
    for key_id, record in retirement.records().items():
        if now < record.window_ends(retirement.grace):
            continue
        refusal = retirement.delete_if_due(
            key_id, lambda: _kion_username(current, config, secretsmanager)
        )
        if refusal is not None and not _exists(retirement, key_id):
            retirement.forget(key_id)  # deleted by someone else: drop its record
        elif refusal is not None:
            logger.info("Retired key kept past its window", access_key_id=key_id, reason=refusal)
        outcomes[key_id] = refusal
    return outcomes


def _exists(retirement: KeyRetirement, access_key_id: str) -> bool:
    return any(key.access_key_id == access_key_id for key in retirement.keys.list())


def _kion_username(
    current: InstallationSecret, config: RotationConfig, secretsmanager: Any | None
) -> str:
    """Whom Kion sends as, asked now with the installation's Kion API key."""
    api_key = KionApiKeys(0, secretsmanager=secretsmanager).api_key(current.kion_api_key_secret_id)
    kion = KionClient(
        current.kion_url,
        api_key,
        ca_pem=current.kion_ca_bundle,
        timeout=config.kion_timeout,
        retries=config.kion_retries,
        backoff_factor=config.kion_retry_backoff,
        api_key_secret_id=current.kion_api_key_secret_id,
    )
    return kion.smtp_settings().username
