"""The fault scenarios, generated from the calls a clean rotation makes.

:func:`survey` runs one clean rotation of each starting installation (VARIANTS) on its own loopback
servers and moto, with a :class:`FaultInjector` recording every external call and what the function
saw from it. Every recorded call site, crossed with every fault kind that applies to it and the
ways of going on after that kind of failure, is one scenario. A call added to the rotation later
shows up in the survey, and so in the scenarios, without a test written for it.

Two faults in one rotation (:class:`DoubleFault`) are a seeded sample of those scenarios, each
with a second fault at a call its recovery makes; the recovery's calls are only known by running
it, so the test rehearses the first fault alone and :meth:`DoubleFault.follow_up` picks the second
from the calls it saw, preferring the calls only a recovery makes.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from fault_injection import (
    KILLED_AFTER,
    KILLED_BEFORE,
    CallSite,
    Fault,
    FaultInjector,
    FollowUp,
    behaviour,
    fault_kinds,
)
from safety_figures import (
    ADOPTED_OUTRIGHT,
    CONVERGED,
    DELETED_EARLY,
    DELETED_IN_USE,
    FINGERPRINT,
    KION_REFUSED,
    NO_OP,
    SCENARIO,
    STEPS,
    WATCH_DELETIONS,
)
from safety_harness import (
    CONTINUATIONS,
    REINVOKE,
    RETRY,
    VARIANTS,
    SafetyRun,
    build_world,
    survey_stand_ins,
)


@dataclass(frozen=True)
class Scenario:
    """Start from ``variant``, fail ``fault`` once, then go on by ``continuation``."""

    variant: str
    fault: Fault
    continuation: str

    def __str__(self) -> str:
        return f"{self.variant}-{self.fault}-then-{self.continuation}"


# The sample of two-fault scenarios: its size and the seed that picks it (and the second faults).
DOUBLE_FAULT_SAMPLE = 240
DOUBLE_FAULT_SEED = 20261126


@dataclass(frozen=True)
class DoubleFault:
    """``first``, with a second fault somewhere in the recovery from it (picked by ``draw``)."""

    first: Scenario
    draw: int

    def __str__(self) -> str:
        return f"{self.first}-and-second-fault-{self.draw}"

    def follow_up(self, recovery: list[tuple[CallSite, str]]) -> tuple[FollowUp, bool]:
        """The second fault, among the calls ``recovery`` made after the first fault fired; and
        whether it strikes a call that only a recovery makes (none of a clean rotation's)."""
        chooser = random.Random(f"{DOUBLE_FAULT_SEED}-{self}")
        clean = set(survey()[self.first.variant])
        recovery_only = [at for at, (site, _) in enumerate(recovery) if site not in clean]
        prefer_recovery_only = recovery_only and chooser.random() < 0.5
        at = chooser.choice(recovery_only if prefer_recovery_only else range(len(recovery)))
        site, seen = recovery[at]
        kind = chooser.choice(fault_kinds(site.call, seen))
        return FollowUp(at + 1, Fault(site, kind)), site not in clean


@dataclass(frozen=True)
class Survey:
    """The calls of one clean rotation, and the trace of what the function saw from them."""

    sites: tuple[CallSite, ...]
    seen: tuple[str, ...]  # what each call answered
    trace: tuple[str, ...]


@cache
def survey() -> dict[str, tuple[CallSite, ...]]:
    """The external calls of one clean rotation from each variant, in order."""
    return {variant: surveyed.sites for variant, surveyed in surveys().items()}


def clean_trace(variant: str) -> tuple[str, ...]:
    """What the function saw in a clean rotation from ``variant``."""
    return surveys()[variant].trace


@cache
def surveys() -> dict[str, Survey]:
    sites: dict[str, Survey] = {}
    with survey_stand_ins() as (smtp, kion, injector, service, clock, _monkeypatch, _):
        for variant in VARIANTS:
            world = build_world(variant, kion, smtp, service, name=f"survey-{variant}")
            injector.reset()
            clock.now = 0.0  # every scenario starts at 0: the same float sums, the same waits
            failure = SafetyRun(world, injector).rotate()
            if failure is not None:
                raise RuntimeError(
                    f"the clean rotation from '{variant}' failed at {failure.step}: {failure.error}"
                )
            sites[variant] = Survey(
                tuple(injector.recorded), tuple(injector.seen), tuple(injector.trace)
            )
    return sites


def continuations(kind: str) -> tuple[str, ...]:
    """How to go on after a fault of ``kind``.

    Every kind is followed by Lambda's own retry of the failed step. The whole-rotation retry and
    the abandon-and-rotate-anew paths are taken after the two kills, which stand for the two
    states a fault can leave (the call made or not), with no clean-up run: the other kinds leave
    one of the same two states, so they would repeat those scenarios.
    """
    return CONTINUATIONS if kind in (KILLED_BEFORE, KILLED_AFTER) else (REINVOKE,)


def replays_another(site: CallSite, continuation: str) -> bool:
    """Retrying the whole rotation after a failed createSecret makes the very calls that
    re-invoking createSecret makes (same token, same steps): count that scenario once."""
    return continuation == RETRY and site.step == "createSecret"


def fault_scenarios() -> list[Scenario]:
    """Every recorded call site x every fault kind for it x the continuations for that kind."""
    return [
        Scenario(variant, Fault(site, kind), continuation)
        for variant, surveyed in surveys().items()
        for site, seen in zip(surveyed.sites, surveyed.seen, strict=True)
        for kind in fault_kinds(site.call, seen)
        for continuation in continuations(kind)
        if not replays_another(site, continuation)
    ]


def double_fault_scenarios() -> list[DoubleFault]:
    """A seeded sample of the single-fault scenarios, each to meet a second fault."""
    singles = fault_scenarios()
    chooser = random.Random(DOUBLE_FAULT_SEED)
    picked = chooser.sample(range(len(singles)), min(DOUBLE_FAULT_SAMPLE, len(singles)))
    return [DoubleFault(singles[index], draw) for draw, index in enumerate(sorted(picked))]


Record = Callable[[str, object], None]  # pytest's record_property


def run_scenario(
    run: SafetyRun, scenario: Scenario, without_faults: tuple[str, ...], record: Record
) -> None:
    """Rotate under the planned faults, go on until the rotation finishes, check the end."""
    injector = run.injector
    planned = [scenario.fault] + ([injector.follow_up.fault] if injector.follow_up else [])
    record(SCENARIO, 1)
    try:
        run.finish(run.rotate(), scenario.continuation)
        assert injector.fired == planned, f"planned {planned}, fired {injector.fired}"
        record(FINGERPRINT, fingerprint(scenario.variant, injector))
        no_op = behaviour(injector.trace) == behaviour(without_faults)
        record(NO_OP, int(no_op))
        assert not no_op, f"the fault {injector.fired[-1]} changed nothing the function did"
        run.assert_converged()
        record(CONVERGED, 1)
        assert not run.unclear_errors, f"errors that name no cause and fix: {run.unclear_errors}"
    finally:
        record(STEPS, run.steps_invoked)
        record(KION_REFUSED, len(run.kion_refused))
        record(DELETED_IN_USE, len(run.deleted_in_use))
        record(DELETED_EARLY, len(run.deleted_before_window))
        record(ADOPTED_OUTRIGHT, len(run.adopted_deleted_outright))
        record(WATCH_DELETIONS, run.watch_deletions)


def fingerprint(variant: str, injector: FaultInjector) -> str:
    return hashlib.sha256("\n".join([variant, *injector.trace]).encode()).hexdigest()[:16]
