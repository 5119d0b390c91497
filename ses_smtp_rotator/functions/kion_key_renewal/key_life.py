"""When the Kion API key is due for renewal, and the error when it no longer works.

A key is renewed when less than half of its life is left: Kion's ``app_api_key_lifespan`` (days)
counted from the key's ``created_at``. Where Kion sets no lifespan, a key is renewed once it is
older than ``KION_API_KEY_RENEW_AFTER_DAYS`` (default 30). A key whose id is unknown (pasted by
hand) has no known age: it is due at once, and its renewal replaces it with a key whose id is known.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.errors import KionAuthError, RotationError
from ses_smtp_rotator.functions.installation_secret import InstallationSecret
from ses_smtp_rotator.functions.kion_key_renewal.key_secret import SET_KION_KEY, ApiKeySecret
from ses_smtp_rotator.functions.services.kion_keys import KionKeyClient

DEFAULT_RENEW_AFTER_DAYS = 30.0


class KionApiKeyExpiredError(RotationError):
    """The stored Kion API key no longer works (expired or deleted): a person must replace it."""


@dataclass(frozen=True)
class KeyLife:
    """How much life the stored key has left, and whether to renew it now."""

    api_key_id: int | None
    created_at: datetime | None
    lifespan: timedelta | None  # None: Kion sets none
    renew_after: timedelta  # the period used where Kion sets no lifespan
    now: datetime

    @property
    def expires_at(self) -> datetime | None:
        if self.created_at is None or self.lifespan is None:
            return None
        return self.created_at + self.lifespan

    @property
    def renew_at(self) -> datetime | None:
        """When the renewal is due; None when the key's age is unknown (due now)."""
        if self.created_at is None:
            return None
        return self.created_at + (self.lifespan / 2 if self.lifespan else self.renew_after)

    @property
    def days_left(self) -> float | None:
        """Days until the key expires; None when it never does or its age is unknown."""
        expires_at = self.expires_at
        return None if expires_at is None else (expires_at - self.now) / timedelta(days=1)

    @property
    def due(self) -> bool:
        renew_at = self.renew_at
        return renew_at is None or self.now >= renew_at


def renew_after_from_environment(environ: Mapping[str, str] = os.environ) -> timedelta:
    """KION_API_KEY_RENEW_AFTER_DAYS: the renewal period where Kion sets no key lifespan."""
    raw = environ.get("KION_API_KEY_RENEW_AFTER_DAYS", "").strip()
    try:
        days = float(raw) if raw else DEFAULT_RENEW_AFTER_DAYS
    except ValueError:
        days = -1.0
    if days <= 0:
        raise ValueError(
            f"Environment variable KION_API_KEY_RENEW_AFTER_DAYS must be a positive number of "
            f"days, not {raw!r}. Fix: set it (e.g. 30) or remove it to use the default."
        )
    return timedelta(days=days)


def key_life(
    kion: KionKeyClient,
    api_key_id: int | None,
    *,
    now: datetime,
    renew_after: timedelta,
    secret_id: str,
    app_config: Mapping[str, Any] | None = None,
) -> KeyLife:
    """Ask Kion, with the stored key itself, how long that key has left. ``app_config``: Kion's
    settings already read with that key this run (None: read them).

    Raises KionApiKeyExpiredError when Kion refuses the key (401): no renewal can help then.
    """
    try:
        settings = kion.app_config() if app_config is None else app_config
        lifespan_days = settings.get("app_api_key_lifespan")
        info = kion.find_key(api_key_id) if api_key_id is not None else None
    except KionAuthError:
        raise expired_key_error(kion.kion_url, secret_id) from None
    lifespan = (
        timedelta(days=lifespan_days)
        if isinstance(lifespan_days, int)
        and not isinstance(lifespan_days, bool)
        and lifespan_days > 0
        else None
    )
    return KeyLife(
        api_key_id=api_key_id if info is not None else None,
        created_at=info.created_at if info is not None else None,
        lifespan=lifespan,
        renew_after=renew_after,
        now=now,
    )


def stored_key_life(
    installation: InstallationSecret,
    config: RotationConfig,
    *,
    now: datetime,
    renew_after: timedelta,
    secretsmanager: object | None = None,
    app_config: Mapping[str, Any] | None = None,
) -> KeyLife:
    """The life left to the key in ``installation``'s Kion API key secret (AWSCURRENT): what
    the watch asks before it starts a renewal with ``ApiKeySecret.start_renewal``.
    ``app_config`` as for :func:`key_life`."""
    secret_id = installation.kion_api_key_secret_id
    stored = ApiKeySecret(secret_id, secretsmanager).current().stored
    kion = KionKeyClient(
        installation.kion_url,
        stored.api_key,
        ca_pem=installation.kion_ca_bundle,
        timeout=config.kion_timeout,
        retries=config.kion_retries,
        backoff_factor=config.kion_retry_backoff,
        api_key_secret_id=secret_id,
    )
    return key_life(
        kion,
        stored.api_key_id,
        now=now,
        renew_after=renew_after,
        secret_id=secret_id,
        app_config=app_config,
    )


def expired_key_error(kion_url: str, secret_id: str) -> KionApiKeyExpiredError:
    return KionApiKeyExpiredError(
        f"Kion at {kion_url} refuses the App API key stored in {secret_id} (401): it expired "
        "or was deleted, so it can no longer be renewed, and rotations of the SMTP credential "
        "fail until it is replaced.",
        "In Kion, create an App API key for the rotator's user, then store it with: "
        f"{SET_KION_KEY} (it checks the key first).",
    )
