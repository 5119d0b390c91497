"""The installation secret: the SMTP credential Kion uses plus the settings the rotation needs.

It is validated on every invocation, so a bad edit is reported by the first step that reads it,
with the field and the fix named.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ses_smtp_rotator.functions.errors import InvalidSecretError
from ses_smtp_rotator.functions.regions import default_smtp_host, ses_regions

IMPLICIT_TLS_PORTS = frozenset({465, 2465})
DEFAULT_SMTP_PORT = 587
# Written by the rotation into each new version: the access key that version's credential replaced.
REPLACES_FIELD = "replaces_access_key_id"
ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
REQUIRED_SETTINGS = ("ses_region", "iam_user_name", "kion_url", "kion_api_key_secret_id")
SCHEMA_HINT = (
    "Store a JSON object with the string fields username, password, ses_region, iam_user_name, "
    "kion_url and kion_api_key_secret_id (optional: smtp_host, smtp_port, smtp_tls, "
    "kion_ca_bundle, smtp_ca_bundle, send_path_check, iam_user_dedicated, ses_account); see "
    "the docs' page The secrets."
)


@dataclass(frozen=True)
class InstallationSecret:
    """One version of an installation secret, parsed and checked."""

    username: str
    password: str
    ses_region: str
    iam_user_name: str
    kion_url: str
    kion_api_key_secret_id: str
    smtp_host: str
    smtp_port: int
    implicit_tls: bool
    kion_ca_bundle: str | None
    smtp_ca_bundle: str | None
    fields: dict[str, Any]
    send_path_check: bool = True
    iam_user_dedicated: bool = False
    ses_account: str = ""
    """The 12-digit account of the IAM user ('' when it is the deployment's own account)."""

    @property
    def access_key_id(self) -> str:
        """The SES SMTP username is the IAM access key id ('' before the first rotation)."""
        return self.username

    @classmethod
    def parse(cls, secret_string: str | None) -> InstallationSecret:
        """Parse and validate ``secret_string``; raise InvalidSecretError naming the bad field."""
        try:
            fields = json.loads(secret_string or "")
        except ValueError:
            raise InvalidSecretError(None, "is not valid JSON", SCHEMA_HINT) from None
        if not isinstance(fields, dict):
            raise InvalidSecretError(None, "is not a JSON object", SCHEMA_HINT)

        for name in REQUIRED_SETTINGS:
            _require_text(fields, name)
        username = _optional_text(fields, "username") or ""
        password = _optional_text(fields, "password") or ""
        if bool(username) != bool(password):
            raise InvalidSecretError(
                "username" if not username else "password",
                "is empty while the other half of the credential is set",
                "Set both username and password, or leave both empty to let the next rotation "
                "adopt the key Kion is configured with.",
            )
        ses_region = fields["ses_region"].strip()
        if ses_region not in ses_regions():
            raise InvalidSecretError(
                "ses_region",
                f"names '{ses_region}', which is not a region with Amazon SES",
                "Use the region of the SES identity Kion sends from, for example us-east-1 or "
                "us-gov-west-1.",
            )
        smtp_port = _smtp_port(fields)
        return cls(
            username=username,
            password=password,
            ses_region=ses_region,
            iam_user_name=fields["iam_user_name"].strip(),
            kion_url=_kion_base_url(fields["kion_url"]),
            kion_api_key_secret_id=fields["kion_api_key_secret_id"].strip(),
            smtp_host=(
                _optional_text(fields, "smtp_host") or default_smtp_host(ses_region)
            ).strip(),
            smtp_port=smtp_port,
            implicit_tls=_implicit_tls(fields, smtp_port),
            kion_ca_bundle=_optional_pem(fields, "kion_ca_bundle"),
            smtp_ca_bundle=_optional_pem(fields, "smtp_ca_bundle"),
            fields=fields,
            send_path_check=_optional_bool(fields, "send_path_check", default=True),
            iam_user_dedicated=_optional_bool(fields, "iam_user_dedicated", default=False),
            ses_account=_optional_account(fields, "ses_account"),
        )

    @property
    def replaces(self) -> str:
        """The access key this version's credential replaced ('' when none is recorded)."""
        value = self.fields.get(REPLACES_FIELD)
        return value if isinstance(value, str) else ""

    def with_credential(self, username: str, password: str, *, replaces: str = "") -> str:
        """The secret string of a new version: these settings (and any extra fields) with a new
        credential, and the access key it replaces."""
        fields = {**self.fields, "username": username, "password": password}
        fields[REPLACES_FIELD] = replaces
        return json.dumps(fields)


def _require_text(fields: dict[str, Any], name: str) -> None:
    if name not in fields:
        raise InvalidSecretError(name, "is missing", f"Add '{name}' to the secret. {SCHEMA_HINT}")
    if not isinstance(fields[name], str) or not fields[name].strip():
        raise InvalidSecretError(
            name, "must be a non-empty string", f"Set '{name}' to a text value. {SCHEMA_HINT}"
        )


def _optional_text(fields: dict[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidSecretError(name, "must be a string", f"Set '{name}' to a text value.")
    return value


def _optional_bool(fields: dict[str, Any], name: str, *, default: bool) -> bool:
    value = fields.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidSecretError(
            name,
            f"must be true or false, not {value!r}",
            f"Set '{name}' to a JSON boolean, or remove it for the default "
            f"({str(default).lower()}).",
        )
    return value


def _optional_account(fields: dict[str, Any], name: str) -> str:
    account = (_optional_text(fields, name) or "").strip()
    if account and not ACCOUNT_ID.match(account):
        raise InvalidSecretError(
            name,
            f"must be a 12-digit AWS account id, not '{account}'",
            f"Set '{name}' to the account that holds the IAM user (12 digits, as a string, "
            'for example "123456789012"), or remove it when the user is in the deployment\'s '
            "own account.",
        )
    return account


def _optional_pem(fields: dict[str, Any], name: str) -> str | None:
    pem = _optional_text(fields, name)
    if not pem:
        return None
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise InvalidSecretError(
            name,
            "is not a PEM certificate",
            f"Put the CA certificate(s) in '{name}' as PEM text (-----BEGIN CERTIFICATE-----...), "
            "or remove the field to use the public CAs.",
        )
    return pem


def _smtp_port(fields: dict[str, Any]) -> int:
    port = fields.get("smtp_port", DEFAULT_SMTP_PORT)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise InvalidSecretError(
            "smtp_port",
            f"must be a port number, not {port!r}",
            "Use 587 (STARTTLS, the default), 25 or 2587 (STARTTLS), or 465 or 2465 (TLS).",
        )
    return port


def _implicit_tls(fields: dict[str, Any], smtp_port: int) -> bool:
    """TLS from the first byte (465, 2465) or STARTTLS (25, 587, 2587); ``smtp_tls`` overrides
    the port's convention for relays on other ports."""
    mode = fields.get("smtp_tls")
    if mode is None:
        return smtp_port in IMPLICIT_TLS_PORTS
    if mode not in ("starttls", "implicit"):
        raise InvalidSecretError(
            "smtp_tls",
            f"must be 'starttls' or 'implicit', not {mode!r}",
            "Remove it to follow the port (465 and 2465 implicit TLS, others STARTTLS).",
        )
    return mode == "implicit"


def _kion_base_url(raw_url: str) -> str:
    url = raw_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
        raise InvalidSecretError(
            "kion_url",
            f"is not an https:// address of a Kion installation ('{url}')",
            "Set it to the address you open Kion at, for example https://kion.example.com "
            "(without /api).",
        )
    return url
