"""EventBridge Scheduler expressions: when a rotation schedule fires next, and which expressions
Scheduler would refuse."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ses_smtp_rotator.schedule import check_expression, next_run

# Thursday, 26 November 2026.
AFTER = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # The stack's default: 14:00 on the first Tuesday of the month.
        ("cron(0 14 ? * TUE#1 *)", datetime(2026, 12, 1, 14, 0, tzinfo=UTC)),
        ("cron(0 14 ? * 3#1 *)", datetime(2026, 12, 1, 14, 0, tzinfo=UTC)),
        ("cron(0 14 ? * TUE#5 *)", datetime(2026, 12, 29, 14, 0, tzinfo=UTC)),
        ("cron(0 14 L * ? *)", datetime(2026, 11, 30, 14, 0, tzinfo=UTC)),
        ("cron(0 14 L-2 * ? *)", datetime(2026, 11, 28, 14, 0, tzinfo=UTC)),
        # The last Friday of November 2026 is the 27th.
        ("cron(0 14 ? * 6L *)", datetime(2026, 11, 27, 14, 0, tzinfo=UTC)),
        # 15 December 2026 is a Tuesday; 1 May 2027 a Saturday, so 1W is Monday the 3rd.
        ("cron(0 14 15W * ? *)", datetime(2026, 12, 15, 14, 0, tzinfo=UTC)),
        ("cron(0 14 1W MAY ? 2027)", datetime(2027, 5, 3, 14, 0, tzinfo=UTC)),
        ("cron(0 9 ? * FRI-MON *)", datetime(2026, 11, 27, 9, 0, tzinfo=UTC)),
        ("cron(0/15 * * * ? *)", datetime(2026, 11, 26, 0, 15, tzinfo=UTC)),
        ("cron(0 0 29 FEB ? *)", datetime(2028, 2, 29, 0, 0, tzinfo=UTC)),
        ("at(2027-01-05T10:00:00)", datetime(2027, 1, 5, 10, 0, tzinfo=UTC)),
    ],
)
def test_next_run_of_a_cron_or_at_expression(expression: str, expected: datetime) -> None:
    assert next_run(expression, "UTC", AFTER) == expected


def test_a_cron_expression_is_read_in_its_time_zone() -> None:
    # 14:00 in New York on 1 December 2026 (EST, UTC-5).
    run = next_run("cron(0 14 ? * TUE#1 *)", "America/New_York", AFTER)
    assert run == datetime(2026, 12, 1, 19, 0, tzinfo=UTC)


def test_a_rate_counts_from_the_schedule_start() -> None:
    started = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    assert next_run("rate(30 days)", "UTC", AFTER, started=started) == datetime(
        2026, 12, 1, 8, 0, tzinfo=UTC
    )
    assert next_run("rate(30 days)", "UTC", AFTER) is None  # no start: unknown


@pytest.mark.parametrize(
    "expression",
    ["cron(0 14 * * * *)", "monthly", "at(2026-01-01T00:00:00)", "cron(0 0 30 2 ? *)"],
)
def test_next_run_is_none_when_it_cannot_be_known(expression: str) -> None:
    assert next_run(expression, "UTC", AFTER) is None
    assert next_run("cron(0 14 ? * TUE#1 *)", "Mars/Olympus", AFTER) is None


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 14 ? * TUE#1 *)",
        "cron(0 14 L * ? *)",
        "cron(0 14 15W * ? *)",
        "cron(*/5 9-17 ? * MON-FRI *)",
        "cron(0 0 1 JAN,JUL ? 2027-2030)",
        "rate(1 day)",
        "rate(1 minute)",
        "rate(30 days)",
        "rate(12 hours)",
        "at(2027-01-05T10:00:00)",
    ],
)
def test_scheduler_takes(expression: str) -> None:
    check_expression(expression)


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("monthly", "not an EventBridge Scheduler expression"),
        ("cron(0 14 * * * *)", "question mark"),
        ("cron(0 14 ? * ? *)", "question mark"),
        ("cron(0 14 ? * TUE#1)", "6 required, 5 provided"),
        ("cron(0 14 ? * TUE#6 *)", "day-of-week value 'TUE#6'"),
        ("cron(0 24 ? * TUE *)", "hour value '24'"),
        ("cron(0 14 32 * ? *)", "day-of-month value '32'"),
        ("cron(0 14 ? * 0 *)", "day-of-week value '0'"),
        ("cron(0 14 LW * ? *)", "cannot compute"),
        ("rate(1 days)", "unit 'day' for the value 1"),
        ("rate(30 day)", "unit 'days' for the value 30"),
        ("rate(0 minutes)", "below 1"),
        ("rate(2 weeks)", "not a rate"),
        ("rate(30days)", "not a rate"),
        ("at(2027-01-05)", "not a one-time schedule"),
    ],
)
def test_scheduler_refuses(expression: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_expression(expression)
