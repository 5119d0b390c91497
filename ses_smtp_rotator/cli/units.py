"""One way to print a length of time, in every command: whole seconds, minutes, hours or days,
with the unit's symbol (``45 s``, ``8 min``, ``5 h``, ``3 d``). JSON carries plain numbers
(``..._seconds``, ``..._days``) instead."""

from __future__ import annotations

from datetime import timedelta


def span(delta: timedelta) -> str:
    seconds = abs(delta.total_seconds())
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"
