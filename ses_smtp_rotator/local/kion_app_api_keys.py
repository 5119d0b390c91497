"""The App API keys of the Kion stand-in, and the key routes of Kion's v3 API.

Each key has the metadata Kion's API shows (id, name, owner, creation and last use) and expires
``app_api_key_lifespan`` days after its creation, on the stand-in's own clock (so tests can move
time on). An expired key still appears in ``GET /api/v3/app-api-key`` until it is deleted, but it
no longer authenticates, and ``GET /api/v3/app-api-key/user/{id}`` leaves it out. A user may hold
``app_api_key_limit`` keys, expired ones included, until some are deleted.

Routes (``/api/v3`` prefix): ``GET``/``POST /app-api-key``, ``GET``/``DELETE /app-api-key/{id}``,
``GET /app-api-key/user/{id}``, and ``POST /app-api-key/rotate`` (which ends the presented key at
once, as Kion's does).
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

APP_API_KEY_PATH = "/api/v3/app-api-key"
_ROUTE = re.compile(r"^/api/v3/app-api-key(?:/(?P<rest>.+))?$")
_ID = re.compile(r"^\d+$")
_USER = re.compile(r"^user/(?P<user>\d+)$")
DEFAULT_USER_ID = 1
SECONDS_PER_DAY = 86_400
NEVER = "0001-01-01T00:00:00+0000"  # how a Go service shows a time that never happened


class KeyRouteError(Exception):
    """A key route answers with Kion's error envelope."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class AppApiKey:
    """One App API key the stand-in issued."""

    id: int
    key: str = field(repr=False)
    name: str
    user_id: int
    created_at: float
    last_used: float | None = None

    def metadata(self) -> dict[str, Any]:
        """The key as Kion's API lists it: metadata only, never the key."""
        return {
            "id": self.id,
            "name": self.name,
            "user_id": self.user_id,
            "created_at": kion_time(self.created_at),
            "last_used": NEVER if self.last_used is None else kion_time(self.last_used),
        }


def kion_time(timestamp: float) -> str:
    """A time in the form Kion's API uses, e.g. ``2019-02-12T22:57:10+0000``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(timestamp))


class AppApiKeys(MutableMapping[int, str]):
    """The issued keys as a mapping ``id -> key`` (expired ones included), with their metadata.

    ``clock`` is the stand-in's clock (seconds since the epoch); ``settings`` returns its
    application settings, where ``app_api_key_lifespan`` and ``app_api_key_limit`` are read at
    each use, so a test can change them at any time.
    """

    def __init__(
        self,
        keys: Iterable[str],
        *,
        clock: Callable[[], float],
        settings: Callable[[], Mapping[str, Any]],
    ) -> None:
        self.records: dict[int, AppApiKey] = {}
        self._clock = clock
        self._settings = settings
        self._next_id = 1
        self._lock = threading.RLock()
        for key in keys:
            self.issue(key=key)

    # -- the mapping ------------------------------------------------------------------------

    def __getitem__(self, key_id: int) -> str:
        return self.records[key_id].key

    def __setitem__(self, key_id: int, key: str) -> None:
        with self._lock:
            self.records[key_id] = AppApiKey(
                key_id, key, "hand-made", DEFAULT_USER_ID, self._clock()
            )
            self._next_id = max(self._next_id, key_id + 1)

    def __delitem__(self, key_id: int) -> None:
        with self._lock:
            del self.records[key_id]

    def __iter__(self) -> Iterator[int]:
        with self._lock:
            return iter(list(self.records))

    def __len__(self) -> int:
        return len(self.records)

    def clear(self) -> None:
        """Forget every key and start ids at 1 again, as a fresh Kion would."""
        with self._lock:
            self.records.clear()
            self._next_id = 1

    # -- keys -------------------------------------------------------------------------------

    def issue(
        self, name: str = "hand-made", user_id: int = DEFAULT_USER_ID, key: str | None = None
    ) -> AppApiKey:
        """A new key for ``user_id``, created now."""
        with self._lock:
            record = AppApiKey(
                self._next_id, key or secrets.token_urlsafe(24), name, user_id, self._clock()
            )
            self.records[record.id] = record
            self._next_id += 1
            return record

    def revoke(self, key_id: int) -> bool:
        """Delete the key with this id; False when there was none."""
        with self._lock:
            return self.records.pop(key_id, None) is not None

    def expires_at(self, record: AppApiKey) -> float | None:
        """When ``record`` stops working; None when Kion sets no lifespan."""
        lifespan = self._settings().get("app_api_key_lifespan")
        if not isinstance(lifespan, int) or lifespan <= 0:
            return None
        return record.created_at + lifespan * SECONDS_PER_DAY

    def is_live(self, record: AppApiKey) -> bool:
        expires_at = self.expires_at(record)
        return expires_at is None or self._clock() < expires_at

    def live_keys(self) -> list[str]:
        """The keys that authenticate now."""
        with self._lock:
            return [r.key for r in self.records.values() if self.is_live(r)]

    def authenticate(self, presented: str) -> AppApiKey | None:
        """The live key equal to ``presented`` (its last use recorded), else None."""
        with self._lock:
            records = list(self.records.values())
        found = None
        for record in records:
            if secrets.compare_digest(presented.encode(), record.key.encode()):
                found = record
        if found is None or not self.is_live(found):
            return None
        found.last_used = self._clock()
        return found

    def users(self) -> set[int]:
        with self._lock:
            return {DEFAULT_USER_ID} | {r.user_id for r in self.records.values()}

    # -- routes -----------------------------------------------------------------------------

    def serve(
        self, method: str, path: str, body: Any, caller: AppApiKey
    ) -> tuple[int, dict[str, Any]]:
        """Answer one request to a key route (authenticated as ``caller``)."""
        rest = (_ROUTE.match(path) or _missing(path)).group("rest")
        if rest is None:
            return self._post(body, caller) if method == "POST" else self._index()
        if rest == "rotate":
            return self._rotate(body, caller)
        user = _USER.match(rest)
        if user:
            return self._of_user(int(user.group("user")))
        key_id = int(rest)
        if method == "DELETE":
            if not self.revoke(key_id):
                raise KeyRouteError(404, f"App API key {key_id} not found")
            return 200, {"status": 200, "message": "App API key deleted"}
        with self._lock:
            record = self.records.get(key_id)
        if record is None:
            raise KeyRouteError(404, f"App API key {key_id} not found")
        return 200, {"status": 200, "data": record.metadata()}

    def _index(self) -> tuple[int, dict[str, Any]]:
        with self._lock:
            listed = [r.metadata() for r in self.records.values()]
        return 200, {"status": 200, "data": listed}

    def _of_user(self, user_id: int) -> tuple[int, dict[str, Any]]:
        if user_id not in self.users():
            raise KeyRouteError(404, f"user {user_id} not found")
        with self._lock:
            records = [r for r in self.records.values() if r.user_id == user_id]
        listed = [r.metadata() for r in records if self.is_live(r)]
        return 200, {"status": 200, "data": listed}

    def _post(self, body: Any, caller: AppApiKey) -> tuple[int, dict[str, Any]]:
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise KeyRouteError(400, "name is required")
        settings = self._settings()
        if settings.get("app_api_key_creation_enabled") is False:
            raise KeyRouteError(403, "App API key creation is disabled")
        with self._lock:
            held = sum(1 for r in self.records.values() if r.user_id == caller.user_id)
            if held >= int(settings.get("app_api_key_limit") or 0):
                raise KeyRouteError(422, "the App API key limit for this user has been reached")
            record = self.issue(name, caller.user_id)
        return 201, {"status": 201, "data": {"id": record.id, "key": record.key}}

    def _rotate(self, body: Any, caller: AppApiKey) -> tuple[int, dict[str, Any]]:
        current = body.get("key") if isinstance(body, dict) else None
        with self._lock:
            old = next((r for r in self.records.values() if r.key == current), None)
            if old is None or not self.is_live(old):
                raise KeyRouteError(400, "key is not a valid App API key")
            del self.records[old.id]
            record = self.issue(old.name, old.user_id)
        return 201, {"status": 201, "data": {"id": record.id, "key": record.key}}


def key_route_methods(path: str) -> frozenset[str] | None:
    """The methods a key route takes, or None when ``path`` is no key route."""
    match = _ROUTE.match(path)
    if match is None:
        return None
    rest = match.group("rest")
    if rest is None:
        return frozenset({"GET", "POST"})
    if rest == "rotate":
        return frozenset({"POST"})
    if _USER.match(rest):
        return frozenset({"GET"})
    if _ID.match(rest):
        return frozenset({"GET", "DELETE"})
    return None


def _missing(path: str) -> re.Match[str]:
    raise KeyRouteError(404, f"route not found: {path}")


@dataclass(frozen=True)
class KionExchange:
    """One request and its JSON reply, as the stand-in handled them (for observers in tests)."""

    method: str
    target: str  # the path with its query
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    status: int
    reply: bytes = field(repr=False)
