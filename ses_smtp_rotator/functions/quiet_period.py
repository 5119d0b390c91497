"""When no invocation of a rotation function can still be working on a rotation.

One rule for three readers: ``status`` and the daily watch offer to give up an unfinished rotation
only once the function has been quiet this long; ``abandon`` refuses before then; and createSecret
deletes a spare access key only once it is this old. A rotation's key is made before the function
last touches the rotation, so once the rotation may be given up, its key may also be deleted, and
the rotation started next cannot trip over it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

GRACE = timedelta(seconds=60)
"""Added to the function's timeout: the hop from one step's invocation to the next, and clock
skew between the function, IAM and the checker."""


def quiet_period(function_timeout: timedelta) -> timedelta:
    """How long the function must have left a rotation (or a key) alone before nothing can still
    be working on it."""
    return function_timeout + GRACE


def quiet_from(last_touch: datetime, function_timeout: timedelta) -> datetime:
    """The moment after which nothing can still be working on what was last touched then."""
    return last_touch + quiet_period(function_timeout)


def is_quiet(last_touch: datetime, function_timeout: timedelta, now: datetime) -> bool:
    """Whether ``now`` is past :func:`quiet_from`."""
    return now > quiet_from(last_touch, function_timeout)
