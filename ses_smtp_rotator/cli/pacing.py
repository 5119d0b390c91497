"""Pacing of the command line's requests against a per-second API quota.

Secrets Manager allows 50 ``RotateSecret`` (and ``CancelRotateSecret``) requests per second per
region, and an account's schedules call ``RotateSecret`` too. ``rotate --all`` with many
installations at once (``--parallel``) could otherwise start them faster than that and have
some refused as throttled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

ROTATE_SECRET_QUOTA = 50
"""Secrets Manager's RotateSecret quota: requests per second per region."""
ROTATE_SECRET_RATE = 40
"""The rate ``rotate`` over several installations keeps to: a fifth of the quota is left for
the schedules' own RotateSecret calls in the same region."""


class RatePacer:
    """Spaces calls at least ``1 / per_second`` apart, across threads: :meth:`wait` returns at
    the caller's turn, so no second holds more than ``per_second`` of them."""

    def __init__(
        self,
        per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / per_second
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Wait for this call's turn (taken in the order callers arrive)."""
        with self._lock:
            now = self._clock()
            turn = max(now, self._next)
            self._next = turn + self.interval
        if turn > now:
            self._sleep(turn - now)
