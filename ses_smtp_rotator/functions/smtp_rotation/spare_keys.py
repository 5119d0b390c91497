"""Which spare access key createSecret may delete to make room at IAM's two-key limit.

Only a key that provably belongs to this installation (recorded in one of its secret's versions,
or any key of a user the stack made for this installation alone), and only one old enough that
no step of an earlier rotation can still be working with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ses_smtp_rotator.functions.quiet_period import quiet_period
from ses_smtp_rotator.functions.services.iam_keys import AccessKey


@dataclass(frozen=True)
class SpareKeyPolicy:
    dedicated_user: bool
    recorded: Callable[[str], bool]  # is this key id in one of the secret's versions?
    now: datetime
    min_age_seconds: float

    def refusal(self, key: AccessKey) -> str | None:
        """Why ``key`` may not be deleted, or None when it may."""
        age = (self.now - key.created_at).total_seconds()
        if age < self.min_age_seconds:
            return (
                f"{key.access_key_id} was created {max(age, 0):.0f} s ago and may belong to a "
                f"rotation step still running (wait {self.min_age_seconds - age:.0f} s)"
            )
        if not self.dedicated_user and not self.recorded(key.access_key_id):
            return (
                f"{key.access_key_id} is recorded in no version of this secret and the IAM user "
                "is not dedicated to this installation, so it may serve another consumer"
            )
        return None


def min_spare_age(function_timeout: float) -> float:
    """A spare key younger than this may still be used by a running step: the same quiet period
    after which ``status`` offers to give up the rotation that made it."""
    return quiet_period(timedelta(seconds=function_timeout)).total_seconds()
