"""When the next scheduled rotation runs: the EventBridge Scheduler schedule that calls
``RotateSecret`` for a secret, and the next time its expression fires.

The CDK stack schedules rotations with EventBridge Scheduler rather than Secrets Manager's own
rotation rules, so DescribeSecret has no NextRotationDate; the schedule has the answer. Cron
expressions are evaluated by aws-croniter; ``check_expression`` applies Scheduler's grammar, for the
CDK app's settings as well.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aws_croniter import AwsCroniter
from aws_croniter.exceptions import AwsCroniterExpressionError
from botocore.exceptions import BotoCoreError, ClientError

ROTATE_TARGET = "secretsmanager:rotateSecret"

# How late a rotation may be beyond the schedule's longest gap before the watch (and status) call
# it failing: Secrets Manager's retries and an on-demand rerun fit in two days.
ROTATION_MARGIN = timedelta(days=2)
# Where the longest gap between runs is measured from: fixed, so synthesis is reproducible.
_MEASURED_FROM = datetime(2026, 1, 1, tzinfo=UTC)
_RUNS_MEASURED = 800


@dataclass(frozen=True)
class RotationScheduleInfo:
    """A schedule that rotates the secret."""

    name: str
    group: str
    expression: str
    time_zone: str
    enabled: bool
    flexible_window_minutes: int
    next_run: datetime | None

    @property
    def rotation_max_age(self) -> timedelta | None:
        """The age past which the last rotation is overdue: the longest gap between runs plus
        ROTATION_MARGIN; None for a disabled schedule or one whose runs are unknown."""
        if not self.enabled:
            return None
        gap = schedule_gap(self.expression, self.time_zone, self.flexible_window_minutes)
        return gap + ROTATION_MARGIN if gap else None

    def describe(self) -> str:
        window = (
            f", within {self.flexible_window_minutes} min" if self.flexible_window_minutes else ""
        )
        state = "" if self.enabled else " (disabled)"
        return f"{self.expression} {self.time_zone}{window}{state}"


def find_schedule(scheduler: Any, secret_arn: str, secret_name: str) -> RotationScheduleInfo | None:
    """The enabled-or-not schedule whose target rotates this secret; None when there is none.

    Raises ClientError/BotoCoreError when the schedules cannot be listed.
    """
    summaries = [
        summary
        for page in scheduler.get_paginator("list_schedules").paginate()
        for summary in page.get("Schedules", [])
        if str(summary.get("Target", {}).get("Arn", "")).endswith(ROTATE_TARGET)
    ]
    for summary in summaries:
        schedule = scheduler.get_schedule(Name=summary["Name"], GroupName=summary["GroupName"])
        try:
            target_secret = json.loads(schedule.get("Target", {}).get("Input") or "{}").get(
                "SecretId"
            )
        except (ValueError, AttributeError):
            continue
        if target_secret in (secret_arn, secret_name):
            return _info(schedule)
    return None


def next_rotation(scheduler: Any, secret_arn: str, secret_name: str) -> tuple[Any, str | None]:
    """``(schedule or None, why unknown or None)``, never raising for AWS errors."""
    try:
        return find_schedule(scheduler, secret_arn, secret_name), None
    except ClientError as error:
        return None, f"scheduler:ListSchedules answered {error.response['Error'].get('Code')}"
    except BotoCoreError as error:
        return None, f"EventBridge Scheduler did not answer ({type(error).__name__})"


def _info(schedule: dict[str, Any]) -> RotationScheduleInfo:
    expression = schedule.get("ScheduleExpression", "")
    time_zone = schedule.get("ScheduleExpressionTimezone") or "UTC"
    window = schedule.get("FlexibleTimeWindow") or {}
    minutes = (
        int(window.get("MaximumWindowInMinutes") or 0) if window.get("Mode") == "FLEXIBLE" else 0
    )
    enabled = schedule.get("State", "ENABLED") == "ENABLED"
    created = schedule.get("StartDate") or schedule.get("CreationDate")
    return RotationScheduleInfo(
        name=schedule.get("Name", ""),
        group=schedule.get("GroupName", "default"),
        expression=expression,
        time_zone=time_zone,
        enabled=enabled,
        flexible_window_minutes=minutes,
        next_run=next_run(expression, time_zone, datetime.now(UTC), started=_when(created))
        if enabled
        else None,
    )


def check_expression(expression: str) -> None:
    """Raise ValueError naming what EventBridge Scheduler would refuse in ``expression``.

    ``cron(...)``: six fields, exactly one of day-of-month and day-of-week ``?``, with ``L``,
    ``W``, ``#``, names, ranges and steps (checked by aws-croniter, which must also be able to
    compute its runs); ``rate(N unit)``: a whole number and minute(s), hour(s) or day(s), singular
    for 1 only; ``at(yyyy-mm-ddThh:mm:ss)``: one moment.
    """
    kind, body = _split(expression)
    if kind == "cron":
        _cron(body)
    elif kind == "rate":
        _rate_period(body)
    else:
        _moment(body)


def next_run(
    expression: str, time_zone: str, after: datetime, *, started: datetime | None = None
) -> datetime | None:
    """The first time after ``after`` that ``expression`` fires, in UTC; None when unknown.

    A cron expression is read in ``time_zone``; a rate counts from ``started``.
    """
    try:
        zone = ZoneInfo(time_zone)
        kind, body = _split(expression)
        if kind == "at":
            moment = _moment(body).replace(tzinfo=zone)
            return moment.astimezone(UTC) if moment > after else None
        if kind == "rate":
            return _next_rate(_rate_period(body), after, started)
        return _next_cron(_cron(body), zone, after)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def schedule_gap(expression: str, time_zone: str, window_minutes: float = 0) -> timedelta | None:
    """The longest time between two runs of ``expression`` over the next two years or 800 runs,
    plus the flexible window; None when its runs cannot be computed."""
    expression = expression.strip()
    started = _MEASURED_FROM if expression.startswith("rate(") else None
    previous = next_run(expression, time_zone, _MEASURED_FROM, started=started)
    longest = timedelta(0)
    for _ in range(_RUNS_MEASURED):
        if previous is None or previous - _MEASURED_FROM > timedelta(days=731):
            break
        following = next_run(expression, time_zone, previous, started=started)
        if following is None:
            break
        longest = max(longest, following - previous)
        previous = following
    return longest + timedelta(minutes=window_minutes) if longest else None


def _split(expression: str) -> tuple[str, str]:
    match = re.fullmatch(r"(cron|rate|at)\((.*)\)", expression.strip())
    if not match:
        raise ValueError(
            "is not an EventBridge Scheduler expression: cron(...), rate(...) or at(...)"
        )
    return match.group(1), match.group(2)


def _cron(body: str) -> AwsCroniter:
    try:
        return AwsCroniter(body)
    except AwsCroniterExpressionError as error:
        raise ValueError(f"is not an EventBridge cron expression ({error})") from None
    except ValueError as error:  # valid fields the library cannot evaluate, e.g. LW
        raise ValueError(
            f"has a cron field aws-croniter cannot compute the runs of ({error})"
        ) from None


def _rate_period(body: str) -> timedelta:
    match = re.fullmatch(r"(\d+) (minute|hour|day)(s?)", body)
    if not match:
        raise ValueError("is not a rate: write rate(<whole number> <minute(s), hour(s) or day(s)>)")
    value, unit, plural = int(match.group(1)), match.group(2), match.group(3)
    if value < 1:
        raise ValueError("has a rate below 1")
    if (value == 1) != (not plural):
        wanted = unit if value == 1 else f"{unit}s"
        raise ValueError(f"takes the unit {wanted!r} for the value {value}")
    return timedelta(**{f"{unit}s": value})


def _moment(body: str) -> datetime:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", body):
        raise ValueError("is not a one-time schedule at(yyyy-mm-ddThh:mm:ss)")
    return datetime.fromisoformat(body)


def _next_rate(period: timedelta, after: datetime, started: datetime | None) -> datetime | None:
    if started is None:
        return None
    elapsed = max(after - started, timedelta(0))
    periods = int(elapsed / period) + 1
    return started + periods * period


def _next_cron(cron: AwsCroniter, zone: ZoneInfo, after: datetime) -> datetime | None:
    # aws-croniter counts in UTC; give it the wall clock of the schedule's time zone instead.
    wall_clock = after.astimezone(zone).replace(tzinfo=UTC)
    (run,) = cron.get_next(wall_clock)
    return run.replace(tzinfo=zone).astimezone(UTC) if run else None


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return None
