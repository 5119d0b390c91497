"""The rollback under a fault at every external call it makes.

Each scenario starts from an installation one clean rotation old (key A replaced by key B, A
Inactive), rolls back with one call failed once (an error before it takes effect, its reply lost
after it took effect, or the function killed before or after it), and then runs the rollback
again, as an operator would, until it reports done. At every call the function makes, and after
every invocation, Kion's configured credential must be one SES accepts at Kion's host. At the end
Kion, AWSCURRENT and an Active key agree on A, B is Inactive (retired with its own window), no
ROLLBACK or stray AWSPENDING label is left, and no key was deleted.

Variants: ``clean`` (the rollback goes through), ``again`` (a rollback of a rollback: back to B)
and ``kion-refuses`` (Kion answers 403 to every PATCH, so the faulted run must end refused with
Kion on its working key; the operator then fixes Kion's permission and rolls back again).
The secret scan of the suite's conftest runs around every scenario.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pytest
from fault_injection import CallSite, Fault, FaultInjector, LambdaKilled, fault_kinds
from rotation_world import RotationWorld
from safety_figures import ROLLBACK_SCENARIO, ROLLBACK_UNWORKING
from safety_harness import (
    STEADY,
    SafetyRun,
    build_world,
    survey_stand_ins,
)

from ses_smtp_rotator.functions.services.secrets_store import CURRENT, PENDING, ROLLBACK
from ses_smtp_rotator.functions.smtp_rotation.handler import lambda_handler
from ses_smtp_rotator.local.kion_server import default_app_config
from ses_smtp_rotator.local.rotation_service import (
    LambdaContextStub,
)

CLEAN = "clean"
AGAIN = "again"
KION_REFUSES = "kion-refuses"
VARIANTS = (CLEAN, AGAIN, KION_REFUSES)
STEP = "rollback"
DONE = ("rolled-back", "already-rolled-back")
RERUNS = 3  # one per fault is enough; more would hide a rollback that does not converge


@dataclass
class RollbackRun:
    """One installation's rollback under test, Kion's credential checked at every call."""

    run: SafetyRun
    injector: FaultInjector
    variant: str
    outcomes: list[str] = field(default_factory=list)
    unworking: list[str] = field(default_factory=list)
    unclear: list[str] = field(default_factory=list)
    restored: tuple[str, str] = ("", "")  # the credential the rollback must bring back
    rolled_back_from: str = ""
    from_version_id: str = ""  # AWSCURRENT when the operator asked, as the command passes it

    @property
    def world(self) -> RotationWorld:
        return self.run.world

    def prepare(self) -> None:
        """Rotate once cleanly (and, for ``again``, roll back once), outside the fault count."""
        world = self.world
        assert self.run.rotate() is None, f"clean rotation: {self.run.failures}"
        if self.variant == AGAIN:
            assert self.roll_back_uncounted()["outcome"] == "rolled-back"
        self.from_version_id = world.current_version_id()
        previous = world.version_fields(VersionStage="AWSPREVIOUS")
        self.restored = (previous["username"], previous["password"])
        self.rolled_back_from = world.kion_credential()[0]
        if self.variant == KION_REFUSES:
            world.kion.fail_requests(403, count=None, methods=["PATCH"])

    def roll_back_uncounted(self) -> dict[str, Any]:
        event = {"Action": "rollback", "SecretId": self.world.secret_id}
        if self.from_version_id:
            event["FromVersionId"] = self.from_version_id
        return lambda_handler(event, LambdaContextStub())

    def roll_back(self) -> str:
        """One invocation of the rollback, counted and faulted; its outcome."""
        with self.injector.invoking(STEP):
            try:
                answer = self.roll_back_uncounted()
                outcome = answer["outcome"]
                if outcome == "refused" and not (answer["cause"] and answer["fix"]):
                    self.unclear.append(str(answer))
            except LambdaKilled:
                outcome = "killed"
            except Exception as error:  # the rollback must answer, never raise
                outcome = "raised"
                self.unclear.append(f"{type(error).__name__}: {error}")
        self.outcomes.append(outcome)
        self.check(f"after rollback invocation {len(self.outcomes)} ({outcome})")
        return outcome

    def check(self, moment: str) -> None:
        outcome = self.world.kion_outcome()
        if outcome not in ("accepted", None):
            username = self.world.kion_credential()[0]
            self.unworking.append(f"{moment}: SES refuses Kion's key {username} ({outcome})")

    def until_rolled_back(self) -> None:
        """Run the rollback again, as the operator would, until it says it is done (the same
        FromVersionId: a run after one that finished unseen reports it done, never flips back)."""
        for _ in range(RERUNS):
            if self.outcomes[-1] in DONE:
                return
            self.roll_back()
        assert self.outcomes[-1] in DONE, f"the rollback did not finish: {self.outcomes}"

    def assert_rolled_back(self) -> None:
        world = self.world
        current = world.current()
        restored_key, restored_password = self.restored
        assert world.kion_credential() == self.restored, "Kion is not on the previous key"
        assert (current["username"], current["password"]) == self.restored
        statuses = key_statuses(world)
        assert statuses == {restored_key: "Active", self.rolled_back_from: "Inactive"}, statuses
        assert restored_password
        assert world.kion_works_where_it_sends()
        stages = world.stages()
        assert not [vid for vid, labels in stages.items() if ROLLBACK in labels]
        apart = [v for v, labels in stages.items() if PENDING in labels and CURRENT not in labels]
        assert not apart, f"AWSPENDING left apart from AWSCURRENT on {apart}"

    def assert_unchanged(self) -> None:
        """Refused: Kion and AWSCURRENT on the key rolled back from, the previous one Inactive."""
        world = self.world
        assert world.kion_credential()[0] == self.rolled_back_from
        assert world.current()["username"] == self.rolled_back_from
        assert key_statuses(world)[self.rolled_back_from] == "Active"


def key_statuses(world: RotationWorld) -> dict[str, str]:
    listed = world.iam.list_access_keys(UserName=world.installation.iam_user_name)
    return {key["AccessKeyId"]: key["Status"] for key in listed["AccessKeyMetadata"]}


@cache
def survey() -> dict[str, tuple[tuple[CallSite, str], ...]]:
    """The external calls of one clean rollback from each variant, with what each answered."""
    sites: dict[str, tuple[tuple[CallSite, str], ...]] = {}
    with survey_stand_ins() as (smtp, kion, injector, service, _clock, _monkeypatch, _):
        for variant in VARIANTS:
            kion.clear_faults()
            kion.app_config.clear()
            kion.app_config.update(default_app_config())
            kion.api_keys.clear()
            kion.create_api_key()
            world = build_world(STEADY, kion, smtp, service, name=f"survey-{variant}")
            rollback = RollbackRun(SafetyRun(world, injector), injector, variant)
            rollback.prepare()
            injector.reset()
            rollback.roll_back()
            expected = "refused" if variant == KION_REFUSES else "rolled-back"
            assert rollback.outcomes == [expected], f"clean rollback from {variant}"
            sites[variant] = tuple(zip(injector.recorded, injector.seen, strict=True))
    return sites


@dataclass(frozen=True)
class RollbackScenario:
    variant: str
    fault: Fault

    def __str__(self) -> str:
        return f"{self.variant}:{self.fault}"


def rollback_scenarios() -> list[RollbackScenario]:
    """Every recorded call site x every fault kind that changes it."""
    return [
        RollbackScenario(variant, Fault(site, kind))
        for variant, calls in survey().items()
        for site, seen in calls
        for kind in fault_kinds(site.call, seen)
    ]


SCENARIOS = rollback_scenarios()


@pytest.fixture
def rollback_run(
    make_run: Callable[[str], SafetyRun], injector: FaultInjector
) -> Iterator[Callable[[str], RollbackRun]]:
    runs: list[RollbackRun] = []

    def make(variant: str) -> RollbackRun:
        rollback = RollbackRun(make_run(STEADY), injector, variant)
        rollback.prepare()
        injector.reset()
        injector.on_site = lambda site: rollback.check(f"at {site}")
        runs.append(rollback)
        return rollback

    yield make
    injector.on_site = lambda site: None


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_the_rollback_survives_the_fault(
    scenario: RollbackScenario,
    rollback_run: Callable[[str], RollbackRun],
    record_property: Callable[[str, object], None],
) -> None:
    rollback = rollback_run(scenario.variant)
    rollback.injector.plan = scenario.fault
    record_property(ROLLBACK_SCENARIO, 1)
    try:
        first = rollback.roll_back()
        assert rollback.injector.fired == [scenario.fault], (
            f"the rollback never made call {scenario.fault.site}: rerun the survey"
        )
        if scenario.variant == KION_REFUSES:
            assert first in ("refused", "killed"), f"Kion refuses every PATCH, yet {first}"
            if first == "refused":
                rollback.assert_unchanged()
            rollback.world.kion.clear_faults()  # the operator gives the API user its permission
        rollback.until_rolled_back()
        rollback.assert_rolled_back()
        assert not rollback.unclear, f"answers that name no cause and fix: {rollback.unclear}"
    finally:
        record_property(ROLLBACK_UNWORKING, int(bool(rollback.unworking)))
    assert not rollback.unworking, f"Kion held a refused credential: {rollback.unworking}"


def test_every_kind_of_external_call_of_the_rollback_is_in_the_scenarios() -> None:
    calls = {scenario.fault.site.call for scenario in SCENARIOS}
    for expected in (
        "iam.UpdateAccessKey",
        "iam.ListAccessKeys",
        "secretsmanager.PutSecretValue",
        "secretsmanager.UpdateSecretVersionStage",
        "kion.PATCH-app-config",
        "kion.GET-app-config",
        "smtp.auth",
        "smtp.send",
    ):
        assert expected in calls, f"no scenario faults {expected}"
    assert len(SCENARIOS) >= 50
