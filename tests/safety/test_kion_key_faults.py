"""The Kion API key renewal under a fault at every external call, alone and interleaved with an
SMTP rotation.

Each scenario starts a renewal from one installation state, fails one of its calls once (an error
before it takes effect, its reply lost after it took effect, or the function killed before or
after it), then goes on as Secrets Manager would. After every step invocation AWSCURRENT's key
must authenticate to Kion; at the moment of every Kion key deletion no version labelled
AWSCURRENT or AWSPENDING may hold that key. At the end the renewal has converged, and one more
renewal runs cleanly and leaves only its own key of the installation in Kion. Interleaved, the
SMTP rotation (with the Kion API key cached, as a warm function has it) must not fail. The secret
scan of the suite's conftest runs around every scenario.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache

import pytest
from fault_injection import Fault, FaultInjector, LambdaKilled, fault_kinds
from fault_scenarios import Scenario, continuations
from kion_key_world import KeyRenewalWorld, renewal_service
from safety_figures import (
    KION_KEY_CONVERGED,
    KION_KEY_DELETED_HELD,
    KION_KEY_OTHER_DEPLOYMENT_DELETED,
    KION_KEY_SCENARIO,
    KION_KEY_UNWORKING,
)
from safety_harness import (
    EMPTY_TRUST_STORE,
    REINVOKE,
    RETRY,
    STEADY,
    VirtualClock,
    build_world,
    ses_on_virtual_time,
    survey_stand_ins,
)

from ses_smtp_rotator.functions.errors import RotationError
from ses_smtp_rotator.functions.kion_key_renewal.key_names import key_name
from ses_smtp_rotator.functions.kion_key_renewal.key_secret import StoredApiKey
from ses_smtp_rotator.functions.kion_key_renewal.steps import KionKeyRenewal
from ses_smtp_rotator.functions.services.kion_keys import KionKeyClient
from ses_smtp_rotator.functions.smtp_rotation import handler
from ses_smtp_rotator.local.kion_app_api_keys import KionExchange
from ses_smtp_rotator.local.kion_server import KionStandIn, default_app_config
from ses_smtp_rotator.local.rotation_service import (
    STEPS,
    LocalRotationService,
    RotationStepError,
)
from ses_smtp_rotator.local.smtp_server import SesSmtpServer

# As the suite's conftest sets it for the SMTP rotation's scenarios.
SMTP_TIMEOUT_SECONDS = "2"

KNOWN = "known-id"  # the key was stored with its id (as set-kion-key does)
AT_LIMIT = "at-limit"  # the user is at app_api_key_limit; a spare key of an earlier renewal,
# and a spare key of another deployment's renewal of a secret with the same name
NEIGHBOUR = "other-dp"  # the version part (8 characters) of that other deployment's key
INTERLEAVED = "interleaved"  # an SMTP rotation runs between the renewal's steps
VARIANTS = (KNOWN, AT_LIMIT, INTERLEAVED)
PENDING, CURRENT = "AWSPENDING", "AWSCURRENT"
# The order of the interleaved variant: (R)enewal and (S)MTP rotation steps.
INTERLEAVING = (
    ("S", "createSecret"),
    ("R", "createSecret"),
    ("S", "setSecret"),
    ("R", "setSecret"),
    ("R", "testSecret"),
    ("S", "testSecret"),
    ("R", "finishSecret"),
    ("S", "finishSecret"),
)


def build_renewal_world(
    variant: str, kion: KionStandIn, smtp: SesSmtpServer, service: LocalRotationService, name: str
) -> KeyRenewalWorld:
    """An installation whose Kion API key was stored with its id, in the state ``variant``."""
    world = KeyRenewalWorld(build_world(STEADY, kion, smtp, service, name=name), renewal_service())
    [(key_id, api_key)] = list(kion.api_keys.items())
    world.store_key(api_key, key_id)
    if variant == AT_LIMIT:
        kion.api_keys.issue(world.key_name("abandoned"))
        neighbour_arn = world.secret_id.replace(
            ":secretsmanager:us-east-1:", ":secretsmanager:us-west-2:"
        )
        kion.api_keys.issue(key_name(neighbour_arn, world.secret_name(), NEIGHBOUR))
        kion.api_keys.issue("a colleague's script")
        kion.app_config["app_api_key_limit"] = len(kion.api_keys)
    return world


@dataclass
class RenewalRun:
    """One installation's renewal under test, with its invariants checked after every step."""

    world: KeyRenewalWorld
    injector: FaultInjector
    variant: str
    steps_invoked: int = 0
    unworking: list[str] = field(default_factory=list)
    deleted_held: list[str] = field(default_factory=list)
    deleted_of_other: list[str] = field(default_factory=list)
    neighbours: set[int] = field(init=False)  # keys another deployment's renewal made
    unclear_errors: list[str] = field(default_factory=list)
    failures: list[RotationStepError | LambdaKilled] = field(default_factory=list)

    def __post_init__(self) -> None:
        records = self.world.kion.api_keys.records.values()
        self.neighbours = {r.id for r in list(records) if r.name.endswith(f"/{NEIGHBOUR}")}

    # -- acting -----------------------------------------------------------------------------

    def invoke(self, step: str, token: str) -> tuple[str, str] | None:
        """One renewal step as Secrets Manager invokes it; returns (step, token) on failure."""
        failed = None
        with self.injector.invoking(step):
            try:
                self.world.step(step, token)
            except RotationStepError as error:
                failed = error.error
            except LambdaKilled as killed:
                failed = killed
        self.steps_invoked += 1
        if failed is not None:
            self.failures.append(failed)
            if not isinstance(failed, RotationError | LambdaKilled):
                self.unclear_errors.append(f"{step}: {type(failed).__name__}: {failed}")
        self.check(f"after {step} (token {token[:8]})")
        return None if failed is None else (step, token)

    def run(self, token: str, steps: tuple[str, ...] = STEPS) -> tuple[str, str] | None:
        for step in steps:
            failure = self.invoke(step, token)
            if failure is not None:
                return failure
        return None

    def renew(self) -> tuple[str, str] | None:
        return self.run(self.world.start())

    def continue_after(self, failure: tuple[str, str], continuation: str) -> None:
        step, token = failure
        if continuation == REINVOKE:
            rest = self.run(token, STEPS[STEPS.index(step) :])
        elif continuation == RETRY:
            assert self.world.start(token) == token
            rest = self.run(token)
        else:
            self.abandon()
            rest = self.renew()
        assert rest is None, f"{continuation} failed at {rest}: {self.failures[-1]}"

    def abandon(self) -> None:
        for version_id, stages in self.world.stages().items():
            if PENDING in stages and CURRENT not in stages:
                self.world.secretsmanager.update_secret_version_stage(
                    SecretId=self.world.secret_id,
                    VersionStage=PENDING,
                    RemoveFromVersionId=version_id,
                )

    # -- checking ---------------------------------------------------------------------------

    def check(self, moment: str) -> None:
        if not self.world.current_works():
            self.unworking.append(f"{moment}: Kion refuses AWSCURRENT's key")
        assert not self.unworking, f"AWSCURRENT must authenticate: {self.unworking}"
        assert not self.deleted_held, f"a held key was deleted: {self.deleted_held}"
        assert not self.deleted_of_other, f"another deployment's key: {self.deleted_of_other}"

    def observe(self, exchange: KionExchange) -> None:
        """At the moment Kion deletes a key: does AWSCURRENT or AWSPENDING hold it?"""
        if exchange.method != "DELETE" or exchange.status != 200:
            return
        key_id = int(exchange.target.rsplit("/", 1)[-1])
        if key_id in self.world.held_key_ids():
            self.deleted_held.append(f"Kion key {key_id} deleted while a version held it")
        if key_id in self.neighbours:
            self.deleted_of_other.append(f"Kion key {key_id} of another deployment deleted")

    def assert_converged(self) -> None:
        world = self.world
        stages = world.stages()
        assert not [v for v, s in stages.items() if PENDING in s and CURRENT not in s]
        current = world.current()
        record = world.record(current["api_key_id"])
        assert record is not None
        assert record.key == current["api_key"], "AWSCURRENT's id is not its key's"
        assert self.renew() is None, f"the next renewal failed: {self.failures[-1]}"
        current_id = world.current()["api_key_id"]
        assert {k.id for k in world.renewal_keys()} == {current_id}
        colleague = {r.id for r in world.kion.api_keys.records.values() if "colleague" in r.name}
        foreign = colleague | self.neighbours
        assert set(world.kion.api_keys) == {current_id} | foreign, "a replaced key is left"


def interleaved(run: RenewalRun, continuation: str) -> None:
    """The interleaving, with the renewal going on after its fault; the SMTP rotation's steps
    run outside the injector's count (no fault) and must all succeed."""
    smtp = run.world.smtp
    smtp_token, token = smtp.start(), None
    for system, step in INTERLEAVING:
        if system == "S":
            smtp.step(step, smtp_token)
            continue
        if token is None:
            token = run.world.start()
        if token == "done":
            continue
        failure = run.invoke(step, token)
        if failure is not None:
            run.continue_after(failure, continuation)
            token = "done"
    assert smtp.converged(), "the SMTP rotation did not converge"


@cache
def survey() -> dict[str, tuple]:
    """The external calls of one clean renewal from each variant, in order."""
    sites: dict[str, tuple] = {}
    with survey_stand_ins() as (smtp, kion, injector, service, _clock, monkeypatch, _):
        for variant in VARIANTS:
            kion.app_config.clear()
            kion.app_config.update(default_app_config())
            kion.api_keys.clear()
            kion.create_api_key()
            world = build_renewal_world(variant, kion, smtp, service, f"survey-{variant}")
            run = RenewalRun(world, injector, variant)
            injector.recorded.clear()
            with warm_function_cache(monkeypatch, variant):
                if variant == INTERLEAVED:
                    interleaved(run, REINVOKE)
                else:
                    assert run.renew() is None, f"clean renewal from {variant}: {run.failures}"
            sites[variant] = tuple(injector.recorded)
    return sites


@contextmanager
def warm_function_cache(monkeypatch: pytest.MonkeyPatch, variant: str) -> Iterator[None]:
    """Interleaved, the function keeps the Kion API key it read (a warm Lambda)."""
    if variant == INTERLEAVED:
        monkeypatch.setenv("KION_API_KEY_CACHE_SECONDS", "3600")
    handler._kion_api_keys.cache_clear()
    try:
        yield
    finally:
        monkeypatch.setenv("KION_API_KEY_CACHE_SECONDS", "0")
        handler._kion_api_keys.cache_clear()


def renewal_scenarios() -> list[Scenario]:
    """Every recorded call site x every fault kind for it x the continuations for that kind."""
    return [
        Scenario(variant, Fault(site, kind), continuation)
        for variant, sites in survey().items()
        for site in sites
        for kind in fault_kinds(site.call)
        for continuation in continuations(kind)
    ]


SCENARIOS = renewal_scenarios()


@pytest.fixture
def renewal_run(
    kion: KionStandIn,
    smtp: SesSmtpServer,
    rotation_service: LocalRotationService,
    injector: FaultInjector,
    clock: VirtualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[str], RenewalRun]]:
    monkeypatch.setenv("SMTP_TIMEOUT_SECONDS", SMTP_TIMEOUT_SECONDS)
    for name, value in EMPTY_TRUST_STORE.items():
        monkeypatch.setenv(name, value)
    ses_on_virtual_time(smtp, injector, clock, monkeypatch)
    observers: list[Callable[[KionExchange], None]] = []

    def make(variant: str) -> RenewalRun:
        world = build_renewal_world(variant, kion, smtp, rotation_service, "kion0")
        run = RenewalRun(world, injector, variant)
        kion.observers.append(run.observe)
        observers.append(run.observe)
        return run

    yield make
    for observe in observers:
        kion.observers.remove(observe)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_the_renewal_survives_the_fault(
    scenario: Scenario,
    renewal_run: Callable[[str], RenewalRun],
    monkeypatch: pytest.MonkeyPatch,
    record_property: Callable[[str, object], None],
) -> None:
    run = renewal_run(scenario.variant)
    run.injector.plan = scenario.fault
    record_property(KION_KEY_SCENARIO, 1)
    try:
        with warm_function_cache(monkeypatch, scenario.variant):
            if scenario.variant == INTERLEAVED:
                interleaved(run, scenario.continuation)
            else:
                failure = run.renew()
                if failure is not None:
                    run.continue_after(failure, scenario.continuation)
            assert run.injector.fired == [scenario.fault], (
                f"the renewal never made call {scenario.fault.site}: rerun the survey"
            )
            run.assert_converged()
        record_property(KION_KEY_CONVERGED, 1)
        assert not run.unclear_errors, f"errors that name no cause and fix: {run.unclear_errors}"
    finally:
        record_property(KION_KEY_UNWORKING, len(run.unworking))
        record_property(KION_KEY_DELETED_HELD, len(run.deleted_held))
        record_property(KION_KEY_OTHER_DEPLOYMENT_DELETED, len(run.deleted_of_other))


def test_every_kind_of_external_call_of_the_renewal_is_in_the_scenarios() -> None:
    calls = {scenario.fault.site.call for scenario in SCENARIOS}
    for expected in (
        "secretsmanager.DescribeSecret",
        "secretsmanager.GetSecretValue",
        "secretsmanager.PutSecretValue",
        "secretsmanager.UpdateSecretVersionStage",
        "kion.GET-app-api-key",
        "kion.POST-app-api-key",
        "kion.GET-app-config",
    ):
        assert expected in calls
    assert any(call.startswith("kion.DELETE-app-api-key/") for call in calls)


def test_the_checks_catch_a_renewal_that_deletes_the_old_key_before_moving_awscurrent(
    renewal_run: Callable[[str], RenewalRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = renewal_run(KNOWN)
    finish = KionKeyRenewal.finish_secret

    def deleting_first(renewal: KionKeyRenewal, pending: StoredApiKey) -> None:
        replaced = renewal.secret.current().stored.api_key_id
        assert replaced is not None
        renewal._kion(pending, renewal.secret.describe()).delete_key(replaced)
        finish(renewal, pending)

    monkeypatch.setattr(KionKeyRenewal, "finish_secret", deleting_first)
    with pytest.raises(AssertionError, match="a held key was deleted"):
        run.renew()
    assert len(run.deleted_held) == 1


def test_the_checks_catch_awscurrent_moved_to_a_key_kion_refuses(
    renewal_run: Callable[[str], RenewalRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = renewal_run(KNOWN)
    token = run.world.start()
    assert run.run(token, STEPS[:3]) is None
    pending = run.world.version_fields(VersionStage=PENDING)
    run.world.kion.revoke_api_key(pending["api_key_id"])  # deleted in Kion meanwhile
    monkeypatch.setattr(KionKeyClient, "find_key", lambda client, key_id: True)  # no check
    with pytest.raises(AssertionError, match="AWSCURRENT must authenticate"):
        run.invoke("finishSecret", token)
    assert len(run.unworking) == 1
