"""Past rotations and Kion API key renewals of one installation, told from the functions' logs.

Each step the functions run logs Powertools JSON records carrying ``secret_id``,
``client_request_token`` (one rotation or renewal), ``step``, ``level``, ``message`` and, on
failure, ``error`` and ``fix``; the records that move keys name them (``access_key_id``,
``api_key_id``). One rotation is the records of one token: it finished when finishSecret logged
"Step finished", failed when its last record is an error, and is unfinished otherwise.

A rollback (``ses-smtp-rotator rollback``) is logged by the rotation function with ``action``
"rollback" and no token: one rollback is the records of one invocation (``function_request_id``).
It finished when it logged "Rolled back", failed (refused) on an error record, and is unfinished
otherwise (its ROLLBACK label stays; ``status`` shows it). The outcome records the rotation
function logs beside each EventBridge event (``outcome_event``, ``event_bus``; see
``functions/smtp_rotation/notices.py``) are kept with the rotation or rollback they end.

The log group is read with ``logs:FilterLogEvents``, narrowed by the secret's name as a quoted
term (it is part of every record's ``secret_id``, name or ARN alike) and then kept to the
records whose ``secret_id`` is this secret. Only the fields above are read from a record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ses_smtp_rotator.cli.commands.rollback import ROLLBACK_EVENT_ACTION
from ses_smtp_rotator.functions.smtp_rotation.notices import OUTCOME_RECORD_FIELD

FINISHED, FAILED, UNFINISHED = "finished", "failed", "unfinished"
ROTATION, RENEWAL, ROLLBACK = "rotation", "Kion API key renewal", "rollback"
# The fields that name a key, and what a record says of that key beside its message.
_KEY_FIELDS = {
    "access_key_id": "",
    "api_key_id": "",
    "replaced_access_key_id": "replaced",
    "retired_access_key_id": "retired",
}
_MAX_PAGES = 50


@dataclass
class PastRotation:
    """One rotation (or renewal) of a secret, as its records tell it."""

    kind: str
    secret: str
    token: str
    started: datetime
    ended: datetime
    outcome: str = UNFINISHED
    failed_step: str | None = None
    cause: str | None = None
    fix: str | None = None
    keys: list[tuple[str, str]] = field(default_factory=list)
    """(key id, what the function logged about it), in the order logged."""
    events: list[tuple[str, str | None]] = field(default_factory=list)
    """(outcome, the EventBridge bus its event went to or None) of each outcome announced."""

    def to_document(self) -> dict[str, Any]:
        rollback = self.kind == ROLLBACK
        return {
            "kind": self.kind,
            "secret": self.secret,
            "version": None if rollback else self.token,
            "function_request_id": self.token if rollback else None,
            "started": self.started.isoformat(),
            "ended": self.ended.isoformat(),
            "duration_seconds": round((self.ended - self.started).total_seconds(), 3),
            "outcome": self.outcome,
            "failed_step": self.failed_step,
            "cause": self.cause,
            "fix": self.fix,
            "keys": [{"id": key, "event": event} for key, event in self.keys],
            "outcome_events": [{"outcome": name, "event_bus": bus} for name, bus in self.events],
        }


@dataclass(frozen=True)
class _Record:
    at: datetime
    kind: str
    token: str
    step: str
    level: str
    message: str
    error: str | None
    fix: str | None
    keys: tuple[tuple[str, str], ...] = ()
    outcome: tuple[str, str | None] | None = None
    """An outcome record's (outcome, event bus); None for a step's own record."""


def secret_names(secret_arn: str, name: str) -> set[str]:
    """What a record's ``secret_id`` may be for this secret: its ARN or its name."""
    return {secret_arn, name}


def past_rotations(
    logs: Any, log_group: str, *, kind: str, secret_arn: str, name: str, since: datetime
) -> tuple[list[PastRotation], str | None]:
    """The rotations (and rollbacks) of the secret logged in ``log_group`` since ``since``,
    newest first, and why the log could not be read (None when it could)."""
    records, unreadable = _records(
        logs, log_group, secret_names(secret_arn, name), name, since, kind
    )
    return assemble(records, secret=name), unreadable


def assemble(records: Iterable[_Record], *, secret: str) -> list[PastRotation]:
    by_token: dict[tuple[str, str], PastRotation] = {}
    for record in sorted(records, key=lambda record: record.at):
        rotation = by_token.get((record.kind, record.token))
        if rotation is None:
            rotation = by_token[record.kind, record.token] = PastRotation(
                record.kind, secret, record.token, record.at, record.at
            )
        rotation.ended = record.at
        for key, event in record.keys:
            if key not in {known for known, _ in rotation.keys}:
                rotation.keys.append((key, event))
        if record.outcome is not None:
            rotation.events.append(record.outcome)  # announces what the step did; no step
        elif record.level in ("ERROR", "CRITICAL"):
            rotation.outcome = FAILED
            rotation.failed_step = record.step or record.kind
            rotation.cause = record.message
            rotation.fix = record.fix
        elif rotation.outcome != FINISHED:
            # A later step that went on after a failure (a retry) un-fails the rotation.
            rotation.outcome = UNFINISHED
            rotation.failed_step = rotation.cause = rotation.fix = None
        if _finished(record):
            rotation.outcome = FINISHED
    return sorted(by_token.values(), key=lambda rotation: rotation.started, reverse=True)


def _finished(record: _Record) -> bool:
    if record.kind == ROLLBACK:
        return record.message == "Rolled back"
    return record.step == "finishSecret" and record.message == "Step finished"


def _records(
    logs: Any, log_group: str, secret_ids: set[str], name: str, since: datetime, kind: str
) -> tuple[list[_Record], str | None]:
    request: dict[str, Any] = {
        "logGroupName": log_group,
        "startTime": int(since.timestamp() * 1000),
        "filterPattern": json.dumps(name),
    }
    records: list[_Record] = []
    try:
        for _ in range(_MAX_PAGES):
            page = logs.filter_log_events(**request)
            for event in page.get("events", []):
                record = _parse(
                    event.get("message", ""), event.get("timestamp", 0), secret_ids, kind
                )
                if record is not None:
                    records.append(record)
            if not page.get("nextToken"):
                break
            request["nextToken"] = page["nextToken"]
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        return records, (
            f"log group {log_group} does not exist"
            if code == "ResourceNotFoundException"
            else f"logs:FilterLogEvents on {log_group} answered {code}"
        )
    except BotoCoreError as error:
        return records, f"CloudWatch Logs did not answer ({type(error).__name__})"
    return records, None


def _parse(message: str, timestamp_ms: int, secret_ids: set[str], kind: str) -> _Record | None:
    """The record in a log event's message: a step of a ``kind`` (its token), or a rollback
    step (its invocation); None for anything else."""
    try:
        record = json.loads(message)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("secret_id") not in secret_ids:
        return None
    token = record.get("client_request_token")
    if not token and record.get("action") == ROLLBACK_EVENT_ACTION:
        kind, token = ROLLBACK, record.get("function_request_id")
    if not token:
        return None
    text = str(record.get("message", ""))
    keys = tuple(
        (str(record[name]), f"{text} ({role})" if role else text)
        for name, role in _KEY_FIELDS.items()
        if record.get(name)
    )
    announced = record.get(OUTCOME_RECORD_FIELD)
    outcome = None
    if isinstance(announced, dict):
        outcome = (str(announced.get("outcome", "")), _text(record.get("event_bus")))
    return _Record(
        at=datetime.fromtimestamp(timestamp_ms / 1000, UTC),
        kind=kind,
        token=str(token),
        step=str(record.get("step", "")),
        level=str(record.get("level", "INFO")).upper(),
        message=text,
        error=_text(record.get("error")),
        fix=_text(record.get("fix")),
        keys=keys if outcome is None else (),
        outcome=outcome,
    )


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)
