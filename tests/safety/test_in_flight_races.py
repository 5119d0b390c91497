"""Steps in flight: a step runs on for a while after its guard check. At every external call of a
rotation T1 after createSecret, an operator abandons T1 (at once, without waiting) and possibly
starts T2 at the key limit; then T1 resumes. Invariants 1 and 2 are checked after every step, and
once the operator has waited and rotated again the installation must converge.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fault_injection import CallSite
from fault_scenarios import survey
from safety_figures import DELETED_IN_USE, KION_REFUSED, RACE, STEPS
from safety_harness import ABANDON, CURRENT, PENDING, STEADY, SafetyRun, StepFailure

from ses_smtp_rotator.local.rotation_service import STEPS as ROTATION_STEPS

ABANDON_ONLY = "abandon"  # the operator abandons T1
ABANDON_AND_START_T2 = "abandon-and-start-t2"  # ... and at once starts T2, at the key limit
OPERATORS = (ABANDON_ONLY, ABANDON_AND_START_T2)

# Every call T1 makes after its key exists: where it can be waiting when the operator acts.
T1_SITES = [site for site in survey()[STEADY] if site.step != "createSecret"]


def abandon_at_once(run: SafetyRun) -> None:
    """Take AWSPENDING off every version apart from AWSCURRENT, with no wait at all."""
    stages = run.world.stages()
    for version_id, labels in stages.items():
        if PENDING in labels and CURRENT not in labels:
            run.world.secretsmanager.update_secret_version_stage(
                SecretId=run.world.secret_id,
                VersionStage=PENDING,
                RemoveFromVersionId=version_id,
            )


@pytest.mark.parametrize("operator", OPERATORS)
@pytest.mark.parametrize("site", T1_SITES, ids=str)
def test_t1_resumes_after_the_operator_acted(
    site: CallSite,
    operator: str,
    make_run: Callable[[str], SafetyRun],
    record_property: Callable[[str, object], None],
) -> None:
    run = make_run(STEADY)
    injector = run.injector
    acted: list[CallSite] = []

    def operator_acts(at: CallSite) -> None:
        if at != site or acted:
            return
        acted.append(at)
        step, counts = injector.step, dict(injector._counts)  # T1's place, kept across T2
        abandon_at_once(run)
        if operator == ABANDON_AND_START_T2:
            run.run(run.world.start(), ROTATION_STEPS[:1])
        injector.step, injector._counts = step, counts

    injector.on_site = operator_acts
    record_property(RACE, 1)
    try:
        t1 = run.world.start()
        failure = run.run(t1)
        assert acted == [site], f"T1 never made call {site}: rerun the survey"
        injector.on_site = lambda at: None
        # T1's remaining steps, delivered late, then the operator waits and rotates again.
        if failure is not None:
            for step in ROTATION_STEPS[ROTATION_STEPS.index(failure.step) + 1 :]:
                run.invoke(step, t1)
        # (A rotation refused for the rollback window of T1's replaced key waits it out.)
        run.finish(failure or StepFailure("finishSecret", t1, None), ABANDON)
        run.assert_converged()
    finally:
        record_property(STEPS, run.steps_invoked)
        record_property(KION_REFUSED, len(run.kion_refused))
        record_property(DELETED_IN_USE, len(run.deleted_in_use))
