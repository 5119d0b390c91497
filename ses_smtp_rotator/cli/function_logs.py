"""The rotation function's own account of a rotation, read from its CloudWatch Logs group.

The function logs Powertools JSON records that carry ``client_request_token`` (the version being
made), ``step``, ``level``, ``message`` and, on failure, ``error`` and ``fix``. Reading them needs
``logs:FilterLogEvents`` on the function's log group; without it the commands still work from the
secret's labels alone, and say so. The outcome record logged after a step
(``functions/smtp_rotation/notices.py``) announces what the step did; it is not read as a step's
progress (``history`` reads it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ses_smtp_rotator.cli.aws_access import AwsAccess, region_of_arn
from ses_smtp_rotator.cli.rotation_function import RotationFunction
from ses_smtp_rotator.functions.smtp_rotation.notices import OUTCOME_RECORD_FIELD

_MAX_PAGES = 20
# Fields that are shown to the operator. Everything else in a record stays unread, so nothing the
# function might log by mistake is ever echoed.
_DETAIL_FIELDS = ("access_key_id", "logins")


@dataclass(frozen=True)
class FunctionLogRecord:
    """One log record of the rotation function about one rotation."""

    at: datetime
    level: str
    step: str
    message: str
    error: str | None = None
    fix: str | None = None
    details: tuple[tuple[str, str], ...] = ()

    @property
    def failed(self) -> bool:
        return self.level in ("ERROR", "CRITICAL")

    @classmethod
    def parse(cls, message: str, timestamp_ms: int, token: str) -> FunctionLogRecord | None:
        """The record in a log event's message, None when it is not about rotation ``token``
        or is the announcement of its outcome."""
        try:
            record = json.loads(message)
        except ValueError:
            return None
        if not isinstance(record, dict) or record.get("client_request_token") != token:
            return None
        if OUTCOME_RECORD_FIELD in record:
            return None
        details = tuple(
            (name, str(record[name]))
            for name in _DETAIL_FIELDS
            if record.get(name) not in (None, "")
        )
        return cls(
            at=datetime.fromtimestamp(timestamp_ms / 1000, UTC),
            level=str(record.get("level", "INFO")).upper(),
            step=str(record.get("step", "")),
            message=str(record.get("message", "")),
            error=_text(record.get("error")),
            fix=_text(record.get("fix")),
            details=details,
        )


class FunctionLogReader:
    """Reads the records of one rotation (one ClientRequestToken) from the function's log group."""

    def __init__(self, aws: AwsAccess, function: RotationFunction) -> None:
        self.function = function
        self.log_group = function.log_group
        self._logs = aws.client("logs", region_of_arn(function.arn) or aws.region)
        self.unavailable: str | None = None
        """Why the logs cannot be read (None while they can)."""
        self._seen: set[str] = set()

    def new_records(self, token: str, since: datetime) -> list[FunctionLogRecord]:
        """Records about ``token`` logged since ``since`` that earlier calls did not return."""
        if self.unavailable:
            return []
        request: dict[str, Any] = {
            "logGroupName": self.log_group,
            "startTime": int(since.timestamp() * 1000),
            "filterPattern": f'"{token}"',
        }
        records: list[FunctionLogRecord] = []
        try:
            for _ in range(_MAX_PAGES):
                page = self._logs.filter_log_events(**request)
                for event in page.get("events", []):
                    event_id = event.get("eventId") or f"{event.get('timestamp')}{event['message']}"
                    if event_id in self._seen:
                        continue
                    self._seen.add(event_id)
                    record = FunctionLogRecord.parse(event["message"], event["timestamp"], token)
                    if record is not None:
                        records.append(record)
                if not page.get("nextToken"):
                    break
                request["nextToken"] = page["nextToken"]
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            self.unavailable = (
                f"log group {self.log_group} does not exist"
                if code == "ResourceNotFoundException"
                else f"logs:FilterLogEvents on {self.log_group} answered {code}"
            )
        except BotoCoreError as error:
            self.unavailable = f"CloudWatch Logs did not answer ({type(error).__name__})"
        records.sort(key=lambda record: record.at)
        return records


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)
