"""Invariants 1, 2 and 4 under a fault at every external call of a rotation, and under two.

Each scenario starts a rotation from one installation state, fails one call once (an error before
it takes effect, its reply lost after it took effect, or the function killed before or after it),
then goes on as Secrets Manager would. The invariants are checked after every step invocation,
and at the end the installation must have converged, and rotate cleanly once more.

A scenario counts only if its fault changed what the function did: its trace (every call and what
the function saw from it) must differ from the trace of the same run without that fault. Two
scenarios with the same trace did the same thing; the figures count them once.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fault_injection import behaviour
from fault_scenarios import (
    DOUBLE_FAULT_SAMPLE,
    DoubleFault,
    Record,
    Scenario,
    clean_trace,
    double_fault_scenarios,
    fault_scenarios,
    run_scenario,
)
from safety_figures import DOUBLE_FAULT, RECOVERY_ONLY
from safety_harness import SafetyRun, VirtualClock

SCENARIOS = fault_scenarios()
DOUBLE_FAULTS = double_fault_scenarios()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_rotation_survives_the_fault(
    scenario: Scenario, make_run: Callable[[str], SafetyRun], record_property: Record
) -> None:
    run = make_run(scenario.variant)
    run.injector.plan = scenario.fault
    run_scenario(run, scenario, clean_trace(scenario.variant), record_property)


@pytest.mark.parametrize("double", DOUBLE_FAULTS, ids=str)
def test_rotation_survives_a_second_fault_during_its_recovery(
    double: DoubleFault,
    make_run: Callable[[str], SafetyRun],
    clock: VirtualClock,
    record_property: Record,
) -> None:
    first = double.first
    rehearsal = make_run(first.variant)
    injector = rehearsal.injector
    injector.plan = first.fault
    rehearsal.finish(rehearsal.rotate(), first.continuation)
    follow_up, recovery_only = double.follow_up(injector.calls_after_first_fault())
    with_first_only = tuple(injector.trace)
    injector.reset()
    clock.now = 0.0  # the same times as the rehearsal, to the last bit of every float sum

    run = make_run(first.variant)
    injector.plan, injector.follow_up = first.fault, follow_up
    record_property(DOUBLE_FAULT, 1)
    record_property(RECOVERY_ONLY, int(recovery_only))
    run_scenario(run, first, with_first_only, record_property)


def test_the_sample_of_double_faults_is_large_enough() -> None:
    assert len(DOUBLE_FAULTS) == DOUBLE_FAULT_SAMPLE >= 200
    assert len({str(double) for double in DOUBLE_FAULTS}) == len(DOUBLE_FAULTS)


def test_every_kind_of_external_call_is_in_the_scenarios() -> None:
    """The survey saw each system the rotation talks to, so no seam is silently unhooked."""
    calls = {scenario.fault.site.call for scenario in SCENARIOS}
    for expected in (
        "iam.CreateAccessKey",
        "iam.DeleteAccessKey",
        "iam.ListAccessKeys",
        "iam.UpdateAccessKey",
        "iam.GetAccessKeyLastUsed",
        "secretsmanager.DescribeSecret",
        "secretsmanager.TagResource",
        "secretsmanager.GetSecretValue",
        "secretsmanager.PutSecretValue",
        "secretsmanager.UpdateSecretVersionStage",
        "secretsmanager.ListSecretVersionIds",
        "kion.GET-app-config",
        "kion.PATCH-app-config",
        "smtp.connect",
        "smtp.auth",
        "smtp.send",
    ):
        assert expected in calls


def test_a_fault_is_told_from_the_run_without_it() -> None:
    """The no-op check compares behaviour, not labels: a fault marked as taking effect after
    the call, but leaving the same outcome, counts as no change."""
    trace = ["setSecret:smtp.auth#1=SMTPAuthenticationError"]
    marked = ["setSecret:smtp.auth#1=SMTPAuthenticationError (after the call took effect)"]
    assert behaviour(marked) == behaviour(trace)
    assert behaviour(["setSecret:smtp.auth#1=SMTPServerDisconnected"]) != behaviour(trace)
