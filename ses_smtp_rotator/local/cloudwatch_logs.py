"""Writes a local function's output into moto's CloudWatch Logs, where Lambda would put it.

It writes to moto's in-process backend directly (no API call per line), so a moto server running
in the same process serves the lines to ``FilterLogEvents`` like CloudWatch Logs serves a real
function's log.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

from moto.core import DEFAULT_ACCOUNT_ID
from moto.logs.models import logs_backends


class MotoLogGroupWriter:
    """Appends lines to one log stream of ``log_group`` (made on first use, like a new Lambda
    instance's stream ``YYYY/MM/DD/[$LATEST]<id>``)."""

    def __init__(
        self, log_group: str, *, region: str = "us-east-1", account_id: str = DEFAULT_ACCOUNT_ID
    ) -> None:
        self.log_group = log_group
        self.stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self._backend = logs_backends[account_id][region]
        self._lock = threading.Lock()
        self._stream_ready = False

    def write(self, line: str, at: float) -> None:
        """Store ``line`` as a log event at ``at`` (epoch seconds)."""
        with self._lock:
            if not self._stream_ready:
                if self.log_group not in self._backend.groups:
                    self._backend.create_log_group(self.log_group, {})
                self._backend.ensure_log_stream(self.log_group, self.stream)
                self._stream_ready = True
            self._backend.put_log_events(
                self.log_group, self.stream, [{"timestamp": int(at * 1000), "message": line}]
            )
