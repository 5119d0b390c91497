"""Kion's App API key routes (``/api/v3/app-api-key``), on the Kion client's request plumbing.

Kion lists key metadata (id, name, owner, creation, last use) but never a key itself, so a key's
id is known for sure only from the reply that created it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ses_smtp_rotator.functions.errors import (
    KionNotFoundError,
    KionPermissionError,
    KionRequestError,
)
from ses_smtp_rotator.functions.services.kion_settings import KionClient

APP_API_KEYS_PATH = "/api/v3/app-api-key"
_EARLIEST_REAL_YEAR = 1971  # Kion shows a time that never happened as year 1


@dataclass(frozen=True)
class AppApiKeyInfo:
    """What Kion tells about one App API key."""

    id: int
    name: str
    user_id: int | None
    created_at: datetime | None
    last_used: datetime | None

    @classmethod
    def from_kion(cls, entry: dict[str, Any]) -> AppApiKeyInfo:
        user_id = entry.get("user_id")
        return cls(
            id=int(entry["id"]),
            name=str(entry.get("name") or ""),
            user_id=user_id if isinstance(user_id, int) else None,
            created_at=parse_kion_time(entry.get("created_at")),
            last_used=parse_kion_time(entry.get("last_used")),
        )


@dataclass(frozen=True)
class NewAppApiKey:
    """A key Kion has just created: the only moment its value and id are seen together."""

    id: int
    key: str = field(repr=False)


def parse_kion_time(text: Any) -> datetime | None:
    """A time as Kion shows it (``2019-02-12T22:57:10+0000``, RFC 3339 too); None when absent."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None or moment.year < _EARLIEST_REAL_YEAR:
        return None
    return moment


class KionKeyClient(KionClient):
    """The Kion client, with the App API key routes."""

    def list_keys(self) -> list[AppApiKeyInfo]:
        """Every App API key the key's user may see (metadata only)."""
        with self._key_permission("list App API keys (GET)"):
            data = self._request("GET", APP_API_KEYS_PATH).get("data")
        if not isinstance(data, list):
            raise KionRequestError(
                f"Kion at {self.kion_url} answered GET {APP_API_KEYS_PATH} without a list.",
                "Check that kion_url points at Kion 3.x with the v3 API.",
            )
        return [AppApiKeyInfo.from_kion(entry) for entry in data if isinstance(entry, dict)]

    def find_key(self, key_id: int) -> AppApiKeyInfo | None:
        """The metadata of key ``key_id``; None when Kion has no such key."""
        try:
            with self._key_permission("read App API keys (GET)"):
                data = self._request("GET", f"{APP_API_KEYS_PATH}/{key_id}").get("data")
        except KionNotFoundError:
            return None
        return AppApiKeyInfo.from_kion(data) if isinstance(data, dict) else None

    def create_key(self, name: str) -> NewAppApiKey:
        """Create a key named ``name`` for the key's user. Never retried: a retry after a lost
        reply would make a second key."""
        with self._key_permission("create App API keys (POST)"):
            data = self._request("POST", APP_API_KEYS_PATH, {"name": name}).get("data")
        if not isinstance(data, dict) or not isinstance(data.get("key"), str) or "id" not in data:
            raise KionRequestError(
                f"Kion at {self.kion_url} answered POST {APP_API_KEYS_PATH} without a key and "
                "its id.",
                "Check that kion_url points at Kion 3.x with the v3 API.",
            )
        return NewAppApiKey(int(data["id"]), data["key"])

    def delete_key(self, key_id: int) -> bool:
        """Delete key ``key_id``; False when Kion had no such key (already deleted)."""
        try:
            with self._key_permission("delete App API keys (DELETE)"):
                self._request("DELETE", f"{APP_API_KEYS_PATH}/{key_id}")
        except KionNotFoundError:
            return False
        return True

    @contextmanager
    def _key_permission(self, action: str) -> Iterator[None]:
        """Say which permission a 403 on a key route is about (not the settings one)."""
        try:
            yield
        except KionPermissionError:
            raise KionPermissionError(
                f"Kion at {self.kion_url} refused to {action} for the API key's user (403), or "
                "App API key creation is switched off.",
                "Give the key's user Kion's 'Manage App API Keys' permission and make sure "
                "app_api_key_creation_enabled is on.",
            ) from None
