"""Kion's App API: read and update the SMTP settings (``/api/v3/app-config``)."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError, MaxRetryError, SSLError
from urllib3.util import Retry, Timeout

from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.errors import (
    KionAuthError,
    KionConnectionError,
    KionNotFoundError,
    KionPermissionError,
    KionRequestError,
)
from ses_smtp_rotator.functions.services.smtp_password import is_smtp_password

APP_CONFIG_PATH = "/api/v3/app-config"
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
# The longest a connection to Kion may take to open, however long KION_TIMEOUT_SECONDS lets a
# reply take: an address that drops packets fails each attempt after this.
CONNECT_TIMEOUT = 5.0
# Kion's (or a proxy's) Retry-After is honoured up to this many seconds: a step has minutes, and
# an hour-long Retry-After would otherwise hold it until the function times out.
RETRY_AFTER_CAP = 5.0
# Requests retried after a failure; a POST or DELETE whose reply was lost may have been applied.
RETRIED_METHODS = frozenset({"GET", "PATCH"})


class CappedRetry(Retry):
    """urllib3's Retry, with Retry-After honoured up to :data:`RETRY_AFTER_CAP` seconds."""

    def get_retry_after(self, response: Any) -> float | None:
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, RETRY_AFTER_CAP)


@dataclass(frozen=True)
class KionSmtpSettings:
    """The SMTP part of Kion's application settings: where Kion sends, as whom, from which
    address. ``None`` where Kion's reply leaves a field out (``password``: where Kion hides it)."""

    username: str
    password: str | None = field(repr=False)
    host: str | None = None
    port: int | None = None
    enabled: bool | None = None
    from_address: str | None = None

    @classmethod
    def from_app_config(cls, app_config: dict[str, Any], kion_url: str) -> KionSmtpSettings:
        """Read the SMTP fields; a reply without ``smtp_username`` is an error, not "no key"."""
        username = app_config.get("smtp_username")
        if not isinstance(username, str):
            problem = (
                "without smtp_username"
                if username is None
                else "with a smtp_username that is not text"
            )
            raise KionRequestError(
                f"Kion at {kion_url} answered GET {APP_CONFIG_PATH} {problem}, so which key Kion "
                "sends with is unknown.",
                "Check that kion_url points at Kion 3.x and that the API key's user may read "
                "system settings; an empty string is how Kion says it has no SMTP username.",
            )
        password = app_config.get("smtp_password")
        # Kion masks a stored password in several styles ("", "********", "<hidden>", ...); only a
        # value that has the form of an SES SMTP password counts as shown.
        shown = isinstance(password, str) and is_smtp_password(password)
        port = app_config.get("smtp_port")
        enabled = app_config.get("smtp_enabled")
        return cls(
            username=username.strip(),
            password=password if shown else None,
            host=_text_or_none(app_config.get("smtp_host")),
            port=port if isinstance(port, int) and not isinstance(port, bool) else None,
            enabled=enabled if isinstance(enabled, bool) else None,
            from_address=_text_or_none(app_config.get("smtp_from")),
        )


def _text_or_none(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


class KionClient:
    """A small client for the Kion settings API, with bearer auth, timeouts and retries.

    ``api_key_secret_id`` names where the key is stored, for the fix of a 401. ``timeout`` bounds
    each reply (a connection: at most :data:`CONNECT_TIMEOUT`); ``retries`` and
    ``backoff_factor`` are urllib3's. The defaults are the function's.
    """

    def __init__(
        self,
        kion_url: str,
        api_key: str,
        *,
        api_key_secret_id: str,
        ca_pem: str | None = None,
        timeout: float = RotationConfig.kion_timeout,
        retries: int = RotationConfig.kion_retries,
        backoff_factor: float = RotationConfig.kion_retry_backoff,
        reload_api_key: Callable[[], str] | None = None,
    ) -> None:
        self.kion_url = kion_url
        self._api_key = api_key
        # Read the stored key again after a 401 (once): a renewal may have replaced it.
        self._reload_api_key = reload_api_key
        self._api_key_secret_id = api_key_secret_id
        self._timeout = Timeout(connect=min(CONNECT_TIMEOUT, timeout), read=timeout)
        self._attempts = retries + 1
        self._http = urllib3.PoolManager(
            ssl_context=_tls_context(ca_pem),
            timeout=self._timeout,
            # Connection failures, timeouts and RETRIED_STATUSES count against one total. Other
            # failures (TLS) are not retried, nor is a POST whose reply timed out: it may have
            # been applied.
            retries=CappedRetry(
                total=retries,
                other=0,
                backoff_factor=backoff_factor,
                status_forcelist=RETRIED_STATUSES,
                allowed_methods=RETRIED_METHODS,
                raise_on_status=False,
            ),
        )

    def smtp_settings(self) -> KionSmtpSettings:
        """Kion's SMTP settings: host, port, sender, username (and password, where shown)."""
        return KionSmtpSettings.from_app_config(self.app_config(), self.kion_url)

    def app_config(self) -> dict[str, Any]:
        """Kion's application settings (the ``data`` of ``GET /api/v3/app-config``)."""
        data = self._request("GET", APP_CONFIG_PATH).get("data")
        if not isinstance(data, dict):
            raise KionRequestError(
                f"Kion at {self.kion_url} answered GET {APP_CONFIG_PATH} without a 'data' object.",
                "Check that kion_url points at Kion itself (version 3.x with the v3 API).",
            )
        return data

    def set_smtp_credential(self, username: str, password: str) -> None:
        """Change Kion's SMTP username and password, and no other setting."""
        body = {"smtp_username": username, "smtp_password": password}
        self._request("PATCH", APP_CONFIG_PATH, body, redact=(password,))

    def rewrite_sender(self, from_address: str) -> None:
        """PATCH ``smtp_from`` with the value Kion holds: proves the key may write the SMTP
        settings (Kion has no dry run) and changes nothing. The sender, because no rotation ever
        writes it: writing back the credential could undo a rotation's PATCH made meanwhile."""
        self._request("PATCH", APP_CONFIG_PATH, {"smtp_from": from_address})

    def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        redact: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        try:
            return self._send(method, path, body, redact)
        except KionAuthError:
            reload, self._reload_api_key = self._reload_api_key, None
            stored = reload() if reload else self._api_key
            if stored == self._api_key:
                raise
            self._api_key = stored
            return self._send(method, path, body, redact)

    def _send(
        self, method: str, path: str, body: dict[str, Any] | None, redact: tuple[str, ...]
    ) -> dict[str, Any]:
        url = self.kion_url + path
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = self._http.request(
                method, url, body=None if body is None else json.dumps(body), headers=headers
            )
        except MaxRetryError as error:
            raise self._connection_error(method, path, error.reason, self._attempts) from None
        except HTTPError as error:  # not retried
            raise self._connection_error(method, path, error, 1) from None
        return self._interpret(method, path, response, (self._api_key, *redact))

    def _interpret(
        self, method: str, path: str, response: Any, redact: tuple[str, ...]
    ) -> dict[str, Any]:
        status = response.status
        try:
            reply = json.loads(response.data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            reply = None
        if not isinstance(reply, dict):
            raise KionRequestError(
                f"Kion at {self.kion_url} answered {method} {path} with HTTP {status} and a reply "
                "that is not Kion's JSON.",
                "Check kion_url: it must be the Kion address itself, not a login page, load "
                "balancer error page or proxy.",
            )
        if 200 <= status < 300:
            return reply
        message = _scrub(str(reply.get("message") or reply.get("error") or ""), redact)
        said = f" Kion said: {message}" if message else ""
        where = f"Kion at {self.kion_url}"
        if status == 401:
            raise KionAuthError(
                f"{where} rejected the App API key (401).{said}",
                f"Put a valid, unexpired App API key into {self._api_key_secret_id}; keys expire "
                "after Kion's app_api_key_lifespan setting.",
            )
        if status == 403:
            raise KionPermissionError(
                f"{where} refused {method} {path} (403): the API key's user may not manage "
                f"system settings.{said}",
                "Give the key's user a Kion permission scheme that can edit application "
                "settings (a Kion administrator), or use a key of such a user.",
            )
        if status == 404:
            raise KionNotFoundError(
                f"{where} has no {path} (404).{said}",
                "Check kion_url: it should be the address you open Kion at, without /api.",
            )
        raise KionRequestError(
            f"{where} answered {method} {path} with HTTP {status}.{said}",
            "Retry later for 5xx or 429 answers; for other codes fix what Kion's message names.",
        )

    def _connection_error(
        self, method: str, path: str, reason: Any, attempts: int
    ) -> KionConnectionError:
        if isinstance(reason, SSLError) or isinstance(
            getattr(reason, "__context__", None), ssl.SSLError
        ):
            return KionConnectionError(
                f"TLS with Kion at {self.kion_url} failed: its certificate is not trusted "
                "or does not match the host name.",
                "If Kion uses a private CA, put that CA's PEM certificate into the secret's "
                "kion_ca_bundle field; otherwise check kion_url's host name.",
            )
        failure = f"{method} {path} to Kion at {self.kion_url}"
        tries = f"{attempts} attempt{'' if attempts == 1 else 's'}"
        if "timeout" in type(reason).__name__.lower():
            failure += (
                f" timed out ({type(reason).__name__}) in {tries}, each allowed "
                f"{self._timeout.connect_timeout:g} s to connect and "
                f"{self._timeout.read_timeout:g} s to answer (KION_TIMEOUT_SECONDS)."
            )
        else:
            failure += f" failed ({type(reason).__name__}) in {tries}."
        return KionConnectionError(
            failure,
            "Check that the function can reach Kion (security group egress on 443, routes, DNS) "
            "and that Kion is up.",
        )


@lru_cache(maxsize=8)
def _tls_context(ca_pem: str | None) -> ssl.SSLContext:
    """Verify Kion's certificate against the public CAs plus ``ca_pem``.

    Made once per CA bundle and shared: loading the system's CA store takes some 20 ms, which each
    step would otherwise pay again.

    The host name is matched by urllib3 rather than by the ssl module, because urllib3 1.26 (still
    found in Lambda runtimes) sends no server name for an IP address, which the ssl module's own
    check refuses outright.
    """
    context = ssl.create_default_context()
    if ca_pem:
        context.load_verify_locations(cadata=ca_pem)
    context.check_hostname = False  # urllib3 matches it after the handshake
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text[:300]
