"""Invariant 3: no secret, nor any 8-character piece of one, in anything the function outputs:
neither raw, nor base64-encoded, nor URL-encoded.

:class:`SecretLedger` learns every secret a test produced: each secret access key moto issued (seen
as it is issued, so keys deleted later still count), the SMTP password derived from it, the
passwords and Kion API keys stored in Secrets Manager, and every App API key the Kion stand-in
issued (seen as it is issued, so keys revoked later still count).
:class:`OutputCapture` collects what the function wrote: Powertools' JSON log lines exactly as
CloudWatch would receive them, every log record with its traceback, everything written to the
stdout and stderr file descriptors (metrics go there as EMF), the X-Ray segments the tracer sent
(:class:`CapturedTraces`: annotations, metadata, recorded exceptions), and the messages and
tracebacks of the errors the steps raised.
"""

from __future__ import annotations

import base64
import json
import logging
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import IAMBackend, iam_backends
from moto.secretsmanager.models import secretsmanager_backends

from ses_smtp_rotator.functions.services.smtp_password import derive_smtp_password
from ses_smtp_rotator.functions.telemetry import logger as rotation_logger
from ses_smtp_rotator.local.kion_server import KionStandIn

PIECE = 8  # the length of the shortest piece of a secret that must not appear
QUARTER = PIECE // 2  # what find_leaks looks up first, at every QUARTER-th place


@dataclass
class SecretLedger:
    """Every secret value a test produced, each with the kind of secret it is."""

    region: str = "us-east-1"
    regions: tuple[str, ...] = ()  # further regions whose SMTP passwords count too
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

    @contextmanager
    def watching_kion(self, monkeypatch: Any) -> Iterator[SecretLedger]:
        """Note each App API key as the Kion stand-in issues it (revoked ones still count)."""
        issue = KionStandIn.create_api_key

        def create_api_key(kion: KionStandIn, *args: Any, **kwargs: Any) -> Any:
            key_id, key = issue(kion, *args, **kwargs)
            self.add("Kion API key", key)
            return key_id, key

        monkeypatch.setattr(KionStandIn, "create_api_key", create_api_key)
        yield self

    def gather_moto_iam(self) -> None:
        """The secret access key of every IAM key moto holds now, in every partition."""
        for account in dict.values(iam_backends):
            for backend in dict.values(account):
                self.secret_access_keys.extend(
                    key.secret_access_key for key in backend.access_keys.values()
                )

    def add(self, kind: str, value: Any) -> None:
        if isinstance(value, str) and len(value.strip()) >= PIECE:
            self.others[value.strip()] = kind

    def gather_secrets_manager(self) -> None:
        """The SMTP passwords and Kion API keys in every version of every secret in moto."""
        for backend in dict.values(secretsmanager_backends[DEFAULT_ACCOUNT_ID]):
            for secret in backend.secrets.values():
                for version in secret.versions.values():
                    self._add_stored(secret.name, version.get("secret_string") or "")

    def _add_stored(self, secret_name: str, stored: str) -> None:
        fields = secret_fields(stored)
        if secret_name.endswith("kion-api-key"):
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
            for region in {self.region, *self.regions}:
                found[derive_smtp_password(secret_access_key, region)] = "SMTP password"
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


def encoded_forms(value: str) -> dict[str, str]:
    """``value`` as it may be written out: raw, URL-encoded (as a path or query part) and
    base64-encoded (standard and URL-safe alphabets) at each of the three byte alignments it can
    have inside a longer encoded text. Each encoded form keeps only the characters that come
    from the value alone."""
    forms = {"raw": value, "URL-encoded": quote(value, safe=""), "form-encoded": quote_plus(value)}
    raw = value.encode("utf-8")
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode("ascii")
        # Characters mixed with the padding bytes in front, or with whatever follows, go.
        own = encoded[4 if shift else 0 : 4 * ((shift + len(raw)) // 3)]
        forms[f"base64 (shift {shift})"] = own
        forms[f"URL-safe base64 (shift {shift})"] = own.replace("+", "-").replace("/", "_")
    return forms


@dataclass
class SecretScan:
    """The scan that runs after every safety test: all a test's output against all its secrets.

    ``capfd`` is pytest's capture of the stdout and stderr file descriptors; ``traces`` the X-Ray
    documents the tracer sent (anything with a ``documents`` list of strings)."""

    ledger: SecretLedger
    outputs: OutputCapture
    traces: Any
    capfd: Any

    def leaks(self) -> list[str]:
        """Gather what was written since the last scan, then report every secret piece in all
        the output gathered so far."""
        captured = self.capfd.readouterr()
        self.outputs.add("stdout (logs and EMF metrics)", captured.out)
        self.outputs.add("stderr", captured.err)
        for document in self.traces.documents:
            self.outputs.add("X-Ray segment", document)
        self.traces.documents.clear()
        self.ledger.gather_secrets_manager()
        return find_leaks(self.ledger.secrets(), self.outputs.texts)


def find_leaks(secrets: dict[str, str], texts: Iterable[tuple[str, str]]) -> list[str]:
    """Where any secret, or any 8-character piece of one, appears, in any of its encoded forms
    (one report per secret and place). Never quotes the secret."""
    pieces: dict[str, tuple[str, str]] = {}  # piece -> (the secret, what it is)
    for value, kind in secrets.items():
        for form, encoded in encoded_forms(value).items():
            named = kind if form == "raw" else f"{kind}, {form},"
            for start in range(len(encoded) - PIECE + 1):
                pieces.setdefault(encoded[start : start + PIECE], (value, named))
    quarters = {piece[i : i + QUARTER] for piece in pieces for i in range(PIECE - QUARTER + 1)}
    leaks = []
    for where, text in texts:
        reported: set[str] = set()
        for start in _piece_candidates(quarters, text):
            found = pieces.get(text[start : start + PIECE])
            if found is not None and found[0] not in reported:
                reported.add(found[0])
                value, named = found
                leaks.append(f"a piece of a {named} ({len(value)} chars) in {where} at {start}")
    return leaks


def _piece_candidates(quarters: set[str], text: str) -> list[int]:
    """Every place in ``text`` where a piece may start, in order; a superset of where one does.

    A piece at ``start`` holds the quarter-piece that begins at the next multiple of
    ``QUARTER`` (at most ``QUARTER - 1`` further on), so looking up only the quarter-pieces at
    those multiples (``quarters``: every quarter of every piece) finds every piece while reading
    a quarter of the places."""
    candidates: set[int] = set()
    for at in range(0, len(text) - QUARTER + 1, QUARTER):
        if text[at : at + QUARTER] in quarters:
            candidates.update(range(max(0, at - QUARTER + 1), at + 1))
    return sorted(start for start in candidates if start + PIECE <= len(text))


def secret_fields(secret_string: str) -> dict[str, Any]:
    """The JSON object in ``secret_string`` ({} when it is not one)."""
    try:
        fields = json.loads(secret_string)
    except ValueError:
        return {}
    return fields if isinstance(fields, dict) else {}
