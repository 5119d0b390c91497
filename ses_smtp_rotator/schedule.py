"""When the next scheduled rotation runs: the EventBridge Scheduler schedule that calls
``RotateSecret`` for a secret, and the next time its expression fires.

The CDK stack schedules rotations with EventBridge Scheduler rather than Secrets Manager's own
rotation rules, so DescribeSecret has no NextRotationDate; the schedule has the answer.
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from botocore.exceptions import BotoCoreError, ClientError

ROTATE_TARGET = "secretsmanager:rotateSecret"
_MONTHS = {name.upper(): index for index, name in enumerate(calendar.month_abbr) if name}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_SEARCH_DAYS = 366 * 5


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


def next_run(
    expression: str, time_zone: str, after: datetime, *, started: datetime | None = None
) -> datetime | None:
    """The first time after ``after`` that ``expression`` fires, in UTC; None when unknown.

    Understands ``cron(...)`` (with ``?``, ranges, lists, steps, ``L`` and ``#``), ``rate(...)``
    (counted from ``started``) and ``at(...)``.
    """
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    match = re.fullmatch(r"\s*(cron|rate|at)\((.*)\)\s*", expression)
    if not match:
        return None
    kind, body = match.groups()
    if kind == "at":
        try:
            moment = datetime.fromisoformat(body).replace(tzinfo=zone)
        except ValueError:
            return None
        return moment.astimezone(UTC) if moment > after else None
    if kind == "rate":
        return _next_rate(body, after, started)
    try:
        return _next_cron(body.split(), zone, after)
    except ValueError:
        return None


def _next_rate(body: str, after: datetime, started: datetime | None) -> datetime | None:
    match = re.fullmatch(r"\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*", body)
    if not match or started is None:
        return None
    unit = match.group(2).rstrip("s")
    period = timedelta(**{f"{unit}s": int(match.group(1))})
    if period.total_seconds() <= 0:
        return None
    elapsed = max(after - started, timedelta(0))
    periods = int(elapsed / period) + 1
    return started + periods * period


def _next_cron(fields: list[str], zone: ZoneInfo, after: datetime) -> datetime | None:
    if len(fields) != 6:
        raise ValueError("a cron expression has six fields")
    minute_field, hour_field, dom_field, month_field, dow_field, year_field = fields
    minutes = sorted(_values(minute_field, 0, 59))
    hours = sorted(_values(hour_field, 0, 23))
    months = _values(month_field, 1, 12, _MONTHS)
    years = _values(year_field, 1970, 2199)
    day_matches = _day_matcher(dom_field, dow_field)
    local_after = after.astimezone(zone)
    day = local_after.date()
    for _ in range(_SEARCH_DAYS):
        if day.year in years and day.month in months and day_matches(day):
            for hour in hours:
                for minute in minutes:
                    moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
                    if moment > local_after:
                        return moment.astimezone(UTC)
        day += timedelta(days=1)
    return None


def _day_matcher(dom_field: str, dow_field: str) -> Callable[[date], bool]:
    checks: list[Callable[[date], bool]] = []
    if dom_field not in ("?", "*"):
        checks.append(_dom_check(dom_field))
    if dow_field not in ("?", "*"):
        checks.append(_dow_check(dow_field))
    return lambda day: all(check(day) for check in checks)


def _dom_check(field: str) -> Callable[[date], bool]:
    if field == "L":
        return lambda day: day.day == calendar.monthrange(day.year, day.month)[1]
    if "W" in field:
        raise ValueError("W (nearest weekday) is not supported")
    days = _values(field, 1, 31)
    return lambda day: day.day in days


def _dow_check(field: str) -> Callable[[date], bool]:
    checks: list[Callable[[date], bool]] = []
    for part in field.split(","):
        if "#" in part:
            weekday, nth = part.split("#")
            wanted, index = _number(weekday, _DAYS), int(nth)
            checks.append(
                lambda day, w=wanted, n=index: (
                    _aws_weekday(day) == w and (day.day - 1) // 7 + 1 == n
                )
            )
        elif part.endswith("L") and part != "L":
            wanted = _number(part[:-1], _DAYS)
            checks.append(
                lambda day, w=wanted: (
                    _aws_weekday(day) == w
                    and day.day + 7 > calendar.monthrange(day.year, day.month)[1]
                )
            )
        else:
            values = _values("7" if part == "L" else part, 1, 7, _DAYS)
            checks.append(lambda day, v=values: _aws_weekday(day) in v)
    return lambda day: any(check(day) for check in checks)


def _aws_weekday(day: date) -> int:
    """EventBridge numbers days 1 (Sunday) to 7 (Saturday)."""
    return (day.weekday() + 1) % 7 + 1


def _values(field: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int]:
    values: set[int] = set()
    for part in field.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
            if step <= 0:
                raise ValueError("a cron step must be positive")
        if part in ("*", "?", ""):
            start, end = low, high
        elif "-" in part:
            first, last = part.split("-", 1)
            start, end = _number(first, names), _number(last, names)
        else:
            start = _number(part, names)
            end = high if step > 1 else start
        if not low <= start <= high or not low <= end <= high:
            raise ValueError(f"{part} is out of range")
        values.update(range(start, end + 1, step))
    return values


def _number(text: str, names: dict[str, int] | None) -> int:
    key = text.strip().upper()
    if names and key in names:
        return names[key]
    return int(key)


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return None
