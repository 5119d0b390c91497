"""The daily watch over 500 and 5000 installations, a tenth of whose Kions drop connections and
a fiftieth hang, simulated on a virtual clock with the real dispatch and per-installation code
(``benchmarks/watch_at_scale.py`` says what its doubles share with the real services): every
due renewal whose Kion answers starts, every failing installation is alerted on, nothing is
dropped, and no invocation comes near the function's timeout. ``make safety`` prints the line."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from safety_figures import WATCH_AT_SCALE

from benchmarks.watch_at_scale import HANGING, UNREACHABLE, Fleet, simulate
from ses_smtp_rotator.functions.config import RotationConfig


@pytest.mark.parametrize("count", [500, 5000])
def test_the_watch_renews_alerts_and_accounts_for_every_installation_at_scale(
    count: int, record_property: Callable[[str, object], None]
) -> None:
    figures = simulate(count)
    record_property(WATCH_AT_SCALE, figures.line())
    assert (figures.unreachable, figures.hanging) == (count // 10, count // 50)
    assert figures.due_reachable > 0
    assert figures.renewals_started_due_reachable == figures.due_reachable
    assert figures.failing_reachable > 0
    assert figures.alerts_for_failing == figures.failing_reachable
    assert figures.alerts_for_others == 0  # an unreachable Kion is unchecked, not failing
    assert figures.unchecked_without_reason == 0
    assert figures.dead_lettered == 0
    assert figures.invocations == count + 1  # the dispatch, then one per installation
    assert figures.longest_invocation < figures.function_timeout
    # Dispatched first (the oldest Kion API key secrets), the due renewals start in the first
    # half of the watch although they are a third of the installations.
    assert figures.last_due_renewal_minutes * 60 < 0.5 * figures.watch_hours * 3600


def test_a_hanging_kion_costs_what_the_configured_timeouts_and_retries_allow() -> None:
    """The simulated Kions cost what urllib3's Retry makes of the function's settings: two Kion
    requests per check (settings, then the API key's life) each tried 1 + KION_RETRIES times
    with the backoff in between."""
    config = RotationConfig()
    backoff = sum(config.kion_retry_backoff * 2**n for n in range(1, config.kion_retries))
    attempts = config.kion_retries + 1
    hanging = simulate(50, unreachable=0.0, hanging=1.0)
    expected = 2 * (attempts * config.kion_timeout + backoff)
    assert expected == pytest.approx(126.0)
    assert hanging.longest_invocation == pytest.approx(expected, abs=2.0)
    unreachable = simulate(50, unreachable=1.0, hanging=0.0)
    expected = 2 * (attempts * 5.0 + backoff)  # the connect timeout: at most 5 s
    assert unreachable.longest_invocation == pytest.approx(expected, abs=2.0)
    assert unreachable.alerts_for_others == 0
    assert unreachable.renewals_started_due_reachable == 0


def test_the_simulated_costs_follow_the_function_settings() -> None:
    tunables = {"KION_TIMEOUT_SECONDS": "2", "KION_RETRIES": "1"}
    hanging = simulate(20, unreachable=0.0, hanging=1.0, tunables=tunables)
    assert hanging.longest_invocation == pytest.approx(2 * (2 * 2.0), abs=2.0)


def test_the_fleet_is_the_same_on_every_run() -> None:
    first, second = Fleet(200), Fleet(200)
    assert [(i.kion.behaviour, i.renewal_due, i.failing) for i in first.installations] == [
        (i.kion.behaviour, i.renewal_due, i.failing) for i in second.installations
    ]
    behaviours = [i.kion.behaviour for i in first.installations]
    assert (behaviours.count(UNREACHABLE), behaviours.count(HANGING)) == (20, 4)


def test_ses_out_of_reach_is_unchecked_on_the_first_day_and_alerted_on_the_second() -> None:
    first = simulate(500, days=1, ses_unreachable=0.02)
    second = simulate(500, days=2, ses_unreachable=0.02)
    assert first.ses_out_of_reach == second.ses_out_of_reach > 0
    assert first.alerts_for_others == 0  # no alert for SES out of reach on day 1
    assert first.alerts_for_failing == first.failing_reachable
    assert second.failing_reachable > first.failing_reachable  # SES's installations now fail
    assert second.alerts_for_failing == second.failing_reachable
    assert second.alerts_for_others == 0
    assert second.renewals_started_due_reachable == second.due_reachable
    assert second.unchecked_without_reason == 0


def test_a_check_longer_than_its_invocation_allows_is_unchecked_with_its_cause() -> None:
    """With a Kion read timeout of 300 s a hanging Kion costs 2406 s: each such check gives up at
    its budget (the invocation's 900 s less 30 s kept for acting), its installation reported as
    unchecked with that cause, and every other installation goes ahead."""
    checked: list = []
    figures = simulate(
        100, unreachable=0.0, hanging=0.1, tunables={"KION_TIMEOUT_SECONDS": "300"}, checked=checked
    )
    unfinished = [health for health in checked if "watch" in health.checks]
    assert len(unfinished) == figures.hanging == 10
    for health in unfinished:
        assert health.unchecked == ["watch"]
        assert "did not finish within 870 s" in health.checks["watch"].summary
    assert figures.longest_invocation == pytest.approx(870.0, abs=1.0)
    assert figures.longest_invocation < figures.function_timeout
    assert figures.renewals_started_due_reachable == figures.due_reachable
    assert figures.unchecked_without_reason == 0
