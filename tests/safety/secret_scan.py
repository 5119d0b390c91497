"""Invariant 3: no secret, nor any 8-character piece of one, in anything the function outputs.

:class:`SecretLedger` learns every secret a test produced: each secret access key moto issued (seen
as it is issued, so keys deleted later still count), the SMTP password derived from it, the
passwords and Kion API keys stored in Secrets Manager, and the keys the Kion stand-in accepts.
:class:`OutputCapture` collects what the function wrote: Powertools' JSON log lines exactly as
CloudWatch would receive them, every log record with its traceback, stdout and stderr (metrics
go there as EMF), and the messages and tracebacks of the errors the steps raised.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import IAMBackend
from moto.secretsmanager.models import secretsmanager_backends

from smtp_rotation.smtp_password import derive_smtp_password
from smtp_rotation.telemetry import logger as rotation_logger

PIECE = 8  # the length of the shortest piece of a secret that must not appear


@dataclass
class SecretLedger:
    """Every secret value a test produced, each with the kind of secret it is."""

    region: str = "us-east-1"
    secret_access_keys: list[str] = field(default_factory=list)
    others: dict[str, str] = field(default_factory=dict)  # value -> kind

    @contextmanager
    def watching_iam(self, monkeypatch: Any) -> Iterator[SecretLedger]:
        """Note each secret access key as moto's IAM issues it."""
        issue = IAMBackend.create_access_key

        def create_access_key(backend: IAMBackend, *args: Any, **kwargs: Any) -> Any:
            key = issue(backend, *args, **kwargs)
            self.secret_access_keys.append(key.secret_access_key)
            return key

        monkeypatch.setattr(IAMBackend, "create_access_key", create_access_key)
        yield self

    def add(self, kind: str, value: Any) -> None:
        if isinstance(value, str) and len(value.strip()) >= PIECE:
            self.others[value.strip()] = kind

    def gather_secrets_manager(self, region: str = "us-east-1") -> None:
        """The SMTP passwords and Kion API keys in every version of every secret in moto."""
        backend = dict.get(secretsmanager_backends[DEFAULT_ACCOUNT_ID], region)
        for secret in [] if backend is None else backend.secrets.values():
            for version in secret.versions.values():
                stored = version.get("secret_string") or ""
                fields = secret_fields(stored)
                if secret.name.endswith("kion-api-key"):
                    # JSON's api_key (its other fields are an id and an ARN); plain text whole;
                    # broken JSON holds no key worth the name
                    plain = [] if stored.lstrip().startswith("{") else [stored]
                    for value in [fields.get("api_key")] if fields else plain:
                        self.add("Kion API key", value)
                else:
                    self.add("SMTP password", fields.get("password") if fields else None)

    def secrets(self) -> dict[str, str]:
        """Every secret value, with its kind."""
        found = dict(self.others)
        for secret_access_key in self.secret_access_keys:
            found[secret_access_key] = "secret access key"
            found[derive_smtp_password(secret_access_key, self.region)] = "SMTP password"
        return found


class _Collector(logging.Handler):
    def __init__(self, sink: list[tuple[str, str]], where: str) -> None:
        super().__init__(logging.DEBUG)
        self.sink, self.where = sink, where

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append((self.where, self.format(record)))


@dataclass
class OutputCapture:
    """Everything the function wrote during a test, as (where, text) pairs."""

    texts: list[tuple[str, str]] = field(default_factory=list)

    @contextmanager
    def capturing_logs(self) -> Iterator[OutputCapture]:
        """Collect Powertools' JSON lines and every log record (with tracebacks) meanwhile."""
        as_json = _Collector(self.texts, "log (Powertools JSON)")
        as_json.setFormatter(rotation_logger.registered_formatter)
        every_record = _Collector(self.texts, "log record")
        every_record.setFormatter(_RecordFormatter())
        rotation_logger.addHandler(as_json)
        logging.getLogger().addHandler(every_record)
        try:
            yield self
        finally:
            rotation_logger.removeHandler(as_json)
            logging.getLogger().removeHandler(every_record)

    def add(self, where: str, text: str) -> None:
        if text:
            self.texts.append((where, text))

    def add_error(self, where: str, error: BaseException) -> None:
        """An error's message, repr and formatted traceback (with its chained causes)."""
        self.add(f"{where} (message)", str(error))
        self.add(f"{where} (repr)", repr(error))
        self.add(f"{where} (traceback)", "".join(traceback.format_exception(error)))


class _RecordFormatter(logging.Formatter):
    """The message, every extra attribute and the traceback of a record."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRIBUTES}
        return f"{text} {extras!r}"


_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def find_leaks(secrets: dict[str, str], texts: Iterable[tuple[str, str]]) -> list[str]:
    """Where any secret, or any 8-character piece of one, appears. Never quotes the secret."""
    texts = list(texts)
    leaks = []
    for value, kind in secrets.items():
        pieces = {value[i : i + PIECE] for i in range(max(1, len(value) - PIECE + 1))}
        for where, text in texts:
            at = next((text.find(piece) for piece in pieces if piece in text), -1)
            if at >= 0:
                leaks.append(f"a piece of a {kind} ({len(value)} chars) in {where} at {at}")
    return leaks


def secret_fields(secret_string: str) -> dict[str, Any]:
    """The JSON object in ``secret_string`` ({} when it is not one)."""
    try:
        fields = json.loads(secret_string)
    except ValueError:
        return {}
    return fields if isinstance(fields, dict) else {}
