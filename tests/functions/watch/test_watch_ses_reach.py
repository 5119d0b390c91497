"""An SES SMTP that cannot be reached: unchecked the first day (a passing network fault), failing
with its cause once two daily watches could not reach it, cleared as soon as SES answers. The
state lives in a tag of the installation secret."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from watch_world import WatchedWorld

from ses_smtp_rotator.functions.watch.health import (
    FAILING,
    HEALTHY,
    SES_UNREACHABLE_TAG,
    UNCHECKED,
    InstallationHealth,
)

DAY = timedelta(days=1)


@pytest.fixture
def ses_down(watched: WatchedWorld) -> Iterator[WatchedWorld]:
    """SES SMTP refuses connections (the stand-in stopped) until the test starts it again."""
    watched.smtp.smtp.stop()
    yield watched
    watched.smtp.smtp.stop()
    watched.smtp.smtp.start()


def watch_on(world: WatchedWorld, now: datetime) -> InstallationHealth:
    [health] = world.watch().run(now=now).checked
    return health


def unreachable_tag(world: WatchedWorld) -> str | None:
    described = world.smtp.secretsmanager.describe_secret(SecretId=world.smtp.secret_id)
    tags = {tag["Key"]: tag["Value"] for tag in described.get("Tags", [])}
    return tags.get(SES_UNREACHABLE_TAG)


def test_the_first_day_ses_cannot_be_reached_is_unchecked_and_remembered(
    ses_down: WatchedWorld,
) -> None:
    day_1 = ses_down.kion_now()
    health = watch_on(ses_down, day_1)
    assert health.verdict == UNCHECKED
    assert health.unchecked == ["ses"]
    assert "could not ask SES SMTP" in health.checks["ses"].summary
    assert unreachable_tag(ses_down) == day_1.isoformat()
    assert ses_down.alerts() == []


def test_the_second_daily_watch_without_ses_fails_with_the_cause_and_alerts(
    ses_down: WatchedWorld,
) -> None:
    day_1 = ses_down.kion_now()
    watch_on(ses_down, day_1)
    health = watch_on(ses_down, day_1 + DAY)
    assert health.verdict == FAILING
    assert health.failing == ["ses"]
    finding = health.checks["ses"]
    assert "could not ask SES SMTP" in finding.summary
    assert f"out of reach since {day_1:%Y-%m-%d %H:%M} UTC (1.0 days)" in finding.summary
    assert "security group, VPC endpoint or NAT" in (finding.fix or "")
    [alert] = ses_down.alerts()
    assert "out of reach since" in alert
    assert unreachable_tag(ses_down) == day_1.isoformat()  # still since the first day


def test_a_second_watch_on_the_same_day_does_not_count_as_the_second_day(
    ses_down: WatchedWorld,
) -> None:
    day_1 = ses_down.kion_now()
    watch_on(ses_down, day_1)
    health = watch_on(ses_down, day_1 + timedelta(hours=2))  # a redelivery, a run by hand
    assert health.verdict == UNCHECKED
    assert ses_down.alerts() == []


def test_ses_answering_again_clears_it_and_the_count_starts_over(ses_down: WatchedWorld) -> None:
    day_1 = ses_down.kion_now()
    watch_on(ses_down, day_1)
    ses_down.smtp.smtp.start()
    health = watch_on(ses_down, day_1 + DAY)
    assert health.verdict == HEALTHY, health.checks
    assert unreachable_tag(ses_down) is None
    ses_down.smtp.smtp.stop()
    health = watch_on(ses_down, day_1 + 2 * DAY)
    assert health.verdict == UNCHECKED  # a new first day
    assert unreachable_tag(ses_down) == (day_1 + 2 * DAY).isoformat()


def test_asking_about_one_installation_reads_the_state_but_never_writes_it(
    ses_down: WatchedWorld,
) -> None:
    day_1 = ses_down.kion_now()
    health_check = ses_down.watch().health_check
    assert health_check.check(ses_down.smtp.secret_id, now=day_1).verdict == UNCHECKED
    assert unreachable_tag(ses_down) is None  # what `status` runs changes nothing
    watch_on(ses_down, day_1)
    later = health_check.check(ses_down.smtp.secret_id, now=day_1 + DAY)
    assert later.verdict == FAILING  # `status` shows what the watch would report
