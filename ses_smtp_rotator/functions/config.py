"""Tunables of the rotation, read from the function's environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class RotationConfig:
    ses_accept_timeout: float = 120.0
    """SES_ACCEPT_TIMEOUT_SECONDS: how long setSecret waits for SES to accept a new key."""
    ses_accept_logins: int = 3
    """SES_ACCEPT_LOGINS: consecutive accepted logins that prove SES accepts a new key."""
    ses_accept_min_span: float = 2.0
    """SES_ACCEPT_MIN_SPAN_SECONDS: the least time those accepted logins must span."""
    function_timeout: float = 300.0
    """FUNCTION_TIMEOUT_SECONDS: the function's timeout; a key younger than this (plus a margin)
    may belong to a step still running, so createSecret never deletes it."""
    smtp_timeout: float = 10.0
    """SMTP_TIMEOUT_SECONDS: connect and reply timeout of one SMTP conversation."""
    kion_timeout: float = 15.0
    """KION_TIMEOUT_SECONDS: read timeout of one Kion request (and its connect timeout, up to
    5 s)."""
    kion_retries: int = 3
    """KION_RETRIES: retries of a Kion request on connection errors, 429 and 5xx."""
    kion_retry_backoff: float = 0.5
    """KION_RETRY_BACKOFF_SECONDS: the backoff factor of Kion retries: the first retry comes at
    once, the next ones after 2, 4, ... times this."""
    previous_key_grace_days: float = 7.0
    """PREVIOUS_KEY_GRACE_DAYS: how long a replaced key stays Inactive (the rollback window)
    before it is deleted; 0 deletes a key this installation made at once."""
    api_key_cache_seconds: int = 60
    """KION_API_KEY_CACHE_SECONDS: how long a warm function reuses the Kion API key it read."""

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> RotationConfig:
        def number(name: str, default: float) -> float:
            raw = environ.get(name, "").strip()
            try:
                return float(raw) if raw else default
            except ValueError:
                raise ValueError(
                    f"Environment variable {name} must be a number, not {raw!r}. Fix: set it to "
                    "a number of seconds or remove it to use the default."
                ) from None

        return cls(
            ses_accept_timeout=number("SES_ACCEPT_TIMEOUT_SECONDS", cls.ses_accept_timeout),
            ses_accept_logins=max(1, int(number("SES_ACCEPT_LOGINS", cls.ses_accept_logins))),
            ses_accept_min_span=number("SES_ACCEPT_MIN_SPAN_SECONDS", cls.ses_accept_min_span),
            function_timeout=number("FUNCTION_TIMEOUT_SECONDS", cls.function_timeout),
            smtp_timeout=number("SMTP_TIMEOUT_SECONDS", cls.smtp_timeout),
            kion_timeout=number("KION_TIMEOUT_SECONDS", cls.kion_timeout),
            kion_retries=int(number("KION_RETRIES", cls.kion_retries)),
            kion_retry_backoff=number("KION_RETRY_BACKOFF_SECONDS", cls.kion_retry_backoff),
            previous_key_grace_days=max(
                0.0, number("PREVIOUS_KEY_GRACE_DAYS", cls.previous_key_grace_days)
            ),
            api_key_cache_seconds=int(
                number("KION_API_KEY_CACHE_SECONDS", cls.api_key_cache_seconds)
            ),
        )
