"""The watch's delete of a retired key under a fault at every call it makes.

After a clean rotation the replaced key is Inactive; its window is made to pass, and the watch
deletes it. Each scenario fails one of the calls of that delete once (an error before it takes
effect, its reply lost after, the function killed before or after), checks invariants 1 and 2
and the retirement rules at once, lets the next day's watch run, and then requires: the key gone,
its record dropped, Kion still working, and the next rotation finishing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache

import pytest
from fault_injection import CallSite, Fault, LambdaKilled, fault_kinds
from fault_scenarios import Record
from safety_figures import (
    ADOPTED_OUTRIGHT,
    DELETED_EARLY,
    DELETED_IN_USE,
    RETIREMENT_SCENARIO,
    WATCH_DELETIONS,
)
from safety_harness import (
    STEADY,
    InstallationState,
    SafetyRun,
    build_world,
    survey_stand_ins,
)

from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.errors import RotationError
from ses_smtp_rotator.functions.watch.retired_key_deletion import delete_retired_keys

WATCH = "watch"


def watch_delete(run: SafetyRun) -> BaseException | None:
    """One run of the watch's delete, as the watch makes it; what it raised, if anything."""
    try:
        with run.injector.invoking(WATCH):
            delete_retired_keys(
                run.world.secret_id, RotationConfig.from_environment(), now=datetime.now(UTC)
            )
    except (Exception, LambdaKilled) as error:
        return error
    return None


@cache
def surveyed() -> tuple[tuple[CallSite, str], ...]:
    """The calls of one clean watch delete after a clean rotation, with what each answered."""
    with survey_stand_ins() as (smtp, kion, injector, service, _clock, _monkeypatch, _):
        run = SafetyRun(build_world(STEADY, kion, smtp, service, name="survey-watch"), injector)
        if run.rotate() is not None:
            raise RuntimeError("the clean rotation before the watch's survey failed")
        run.world.backdate_retirements()
        injector.reset()
        if watch_delete(run) is not None or run.world.retired_keys():
            raise RuntimeError("the clean watch delete did not delete the retired key")
        return tuple(zip(injector.recorded, injector.seen, strict=True))


FAULTS = [Fault(site, kind) for site, seen in surveyed() for kind in fault_kinds(site.call, seen)]


def test_the_survey_sees_the_delete_and_its_rechecks() -> None:
    calls = {site.call for site, _ in surveyed()}
    assert {
        "iam.ListAccessKeys",
        "iam.DeleteAccessKey",
        "secretsmanager.DescribeSecret",
        "secretsmanager.GetSecretValue",
        "secretsmanager.UntagResource",
        "kion.GET-app-config",
    } <= calls


@pytest.mark.parametrize("fault", FAULTS, ids=str)
def test_the_watchs_delete_survives_the_fault(
    fault: Fault, make_run: Callable[[str], SafetyRun], record_property: Record
) -> None:
    run = make_run(STEADY)
    assert run.rotate() is None
    [replaced] = run.world.retired_keys()
    run.world.backdate_retirements()
    run.injector.plan = fault
    record_property(RETIREMENT_SCENARIO, 1)
    try:
        raised = watch_delete(run)
        assert run.injector.fired == [fault]
        assert raised is None or isinstance(raised, RotationError | LambdaKilled), repr(raised)
        run.check_invariants(f"after the watch met {fault}")

        run.pass_rollback_window()  # the next day's watch

        assert replaced not in run.world.access_key_ids()
        assert replaced not in run.world.retired_keys()
        run.before = InstallationState.of(run.world)
        assert run.rotate() is None
        run.assert_rotated("after the next rotation")
    finally:
        record_property(DELETED_IN_USE, len(run.deleted_in_use))
        record_property(DELETED_EARLY, len(run.deleted_before_window))
        record_property(ADOPTED_OUTRIGHT, len(run.adopted_deleted_outright))
        record_property(WATCH_DELETIONS, run.watch_deletions)
