"""Invariants 1, 2 and 4 under a fault at every external call of a rotation.

Each scenario starts a rotation from one installation state, fails one call once (an error before
it takes effect, its reply lost after it took effect, or the function killed before or after it),
then goes on as Secrets Manager would. The invariants are checked after every step invocation,
and at the end the installation must have converged, and rotate cleanly once more.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fault_scenarios import Scenario, fault_scenarios
from safety_figures import CONVERGED, DELETED_IN_USE, KION_REFUSED, SCENARIO, STEPS
from safety_harness import SafetyRun

SCENARIOS = fault_scenarios()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_rotation_survives_the_fault(
    scenario: Scenario,
    make_run: Callable[[str], SafetyRun],
    record_property: Callable[[str, object], None],
) -> None:
    run = make_run(scenario.variant)
    run.injector.plan = scenario.fault
    record_property(SCENARIO, 1)
    try:
        failure = run.rotate()
        assert run.injector.fired == [scenario.fault], (
            f"the rotation never made call {scenario.fault.site}: rerun the survey"
        )
        if failure is not None:
            rest = run.continue_after(failure, scenario.continuation)
            assert rest is None, f"{scenario.continuation} failed at {rest.step}: {rest.error}"
        run.assert_converged()
        record_property(CONVERGED, 1)
        assert not run.unclear_errors, f"errors that name no cause and fix: {run.unclear_errors}"
    finally:
        record_property(STEPS, run.steps_invoked)
        record_property(KION_REFUSED, len(run.kion_refused))
        record_property(DELETED_IN_USE, len(run.deleted_in_use))


def test_every_kind_of_external_call_is_in_the_scenarios() -> None:
    """The survey saw each system the rotation talks to, so no seam is silently unhooked."""
    calls = {scenario.fault.site.call for scenario in SCENARIOS}
    for expected in (
        "iam.CreateAccessKey",
        "iam.DeleteAccessKey",
        "iam.ListAccessKeys",
        "secretsmanager.DescribeSecret",
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
