"""Installations whose IAM user is in another account, under faults at STS AssumeRole.

Each starting installation (VARIANTS) lives in the SES account; the deployment account holds a
decoy user of the same name with a key of its own, so that a request sent with the wrong
account's credentials would find a user to act on. A clean rotation, and then the watch's delete
of the replaced key, are surveyed for their AssumeRole calls; every one of them is failed once by
each fault kind STS can give (AccessDenied, throttling, a 500, no answer, credentials that expire
within botocore's refresh window so that the next request must assume the role again, a lost
reply, the function killed before or after). Then the rotation goes on as Secrets Manager would
(after a kill also by a retry of the whole rotation, or an operator's abandon and a new one),
and must converge with the invariants held after every step; the window passes, the watch
deletes, and one more rotation finishes.

The keys of every account but the installation's are read from moto before and after each
scenario: any key created, changed or deleted there is counted (``keys touched in an account not
the installation's``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import cache

import pytest
from cross_account_world import DEPLOYMENT_ACCOUNT, SES_ACCOUNT, Accounts, two_accounts
from fault_injection import CallSite, Fault, FaultInjector, LambdaKilled, fault_kinds
from fault_scenarios import Record, continuations, replays_another
from moto.iam.models import iam_backends
from rotation_world import RotationWorld
from safety_figures import (
    ADOPTED_OUTRIGHT,
    CROSS_ACCOUNT_CONVERGED,
    CROSS_ACCOUNT_SCENARIO,
    DELETED_EARLY,
    DELETED_IN_USE,
    KEYS_TOUCHED_ELSEWHERE,
)
from safety_harness import (
    ADOPT,
    EMPTY_TRUST_STORE,
    LEFTOVER,
    REINVOKE,
    RESUME,
    STEPS,
    VARIANTS,
    InstallationState,
    SafetyRun,
    VirtualClock,
    abandon,
    observer_client,
    ses_on_virtual_time,
    survey_stand_ins,
)

from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.errors import RotationError
from ses_smtp_rotator.functions.services import account_access
from ses_smtp_rotator.functions.watch.retired_key_deletion import delete_retired_keys
from ses_smtp_rotator.local.installation import provision_installation
from ses_smtp_rotator.local.kion_server import KionStandIn
from ses_smtp_rotator.local.rotation_service import LocalRotationService
from ses_smtp_rotator.local.smtp_server import SesSmtpServer, SilentSmtpServer

WATCH = "watch"
ASSUME_ROLE = "sts.AssumeRole"


def build_cross_world(
    variant: str,
    kion: KionStandIn,
    smtp: SesSmtpServer,
    service: LocalRotationService,
    accounts: Accounts,
    name: str,
) -> RotationWorld:
    """An installation in the state ``variant`` names, its user in the SES account, and a
    decoy user of the same name (with a key) in the deployment account."""
    secretsmanager = observer_client("secretsmanager")
    installation = provision_installation(
        kion,
        smtp,
        name=name,
        adopt=variant == ADOPT,
        iam=accounts.ses_iam,
        secretsmanager=secretsmanager,
        ses_account=SES_ACCOUNT,
    )
    accounts.deployment_iam.create_user(UserName=installation.iam_user_name)
    accounts.deployment_iam.create_access_key(UserName=installation.iam_user_name)
    world = RotationWorld(
        installation,
        kion,
        smtp,
        service,
        iam=accounts.ses_iam,
        secretsmanager=secretsmanager,
        account_id=SES_ACCOUNT,
    )
    if variant == LEFTOVER:
        world.iam.create_access_key(UserName=installation.iam_user_name)
    world.backdate_keys()
    if variant == RESUME:
        token = world.start()
        world.run_steps(token, STEPS[:2])
        abandon(world)
    return world


def keys_elsewhere() -> set[tuple[str, str, str, str]]:
    """Every IAM user key (account, user, key, status) in every account but the SES account."""
    return {
        (account, user.name, key.access_key_id, key.status)
        for account, backends in dict.items(iam_backends)
        if account != SES_ACCOUNT and "aws" in backends
        for user in backends["aws"].users.values()
        for key in user.access_keys
    }


def watch_delete(run: SafetyRun) -> BaseException | None:
    """One run of the watch's delete in an invocation of its own; what it raised, if anything."""
    account_access.new_invocation()
    try:
        with run.injector.invoking(WATCH):
            delete_retired_keys(
                run.world.secret_id, RotationConfig.from_environment(), now=datetime.now(UTC)
            )
    except (Exception, LambdaKilled) as error:
        return error
    return None


@cache
def surveyed() -> dict[str, tuple[tuple[CallSite, str], ...]]:
    """Per variant, the AssumeRole calls of a clean rotation and of the watch's delete after
    it, with what each answered."""
    found = {}
    with survey_stand_ins(two_accounts) as stand_ins:
        for variant in VARIANTS:
            world = build_cross_world(
                variant,
                stand_ins.kion,
                stand_ins.smtp,
                stand_ins.service,
                stand_ins.accounts,
                f"s-{variant}",
            )
            injector = stand_ins.injector
            injector.reset()
            stand_ins.clock.now = 0.0
            run = SafetyRun(world, injector)
            if run.rotate() is not None:
                raise RuntimeError(f"the clean cross-account rotation from {variant} failed")
            world.backdate_retirements()
            if watch_delete(run) is not None:
                raise RuntimeError(f"the clean cross-account watch after {variant} failed")
            calls = zip(injector.recorded, injector.seen, strict=True)
            found[variant] = tuple((site, seen) for site, seen in calls if site.call == ASSUME_ROLE)
    return found


SCENARIOS = [
    (variant, Fault(site, kind), continuation)
    for variant, sites in surveyed().items()
    for site, seen in sites
    for kind in fault_kinds(site.call, seen)
    for continuation in (continuations(kind) if site.step != WATCH else (REINVOKE,))
    if not replays_another(site, continuation)
]


def test_the_survey_assumes_the_role_in_each_step_that_needs_iam_and_in_the_watch() -> None:
    for sites in surveyed().values():
        steps = {site.step for site, _ in sites}
        assert {"createSecret", "finishSecret", WATCH} <= steps
        assert "testSecret" not in steps  # no IAM call there: no role assumed
    assert 100 <= len(SCENARIOS) <= 200


@pytest.fixture
def accounts(aws: None, monkeypatch: pytest.MonkeyPatch, smtp: SesSmtpServer) -> Iterator:
    with two_accounts(monkeypatch, smtp) as accounts:
        yield accounts


@pytest.fixture
def make_cross_run(
    accounts: Accounts,
    kion: KionStandIn,
    smtp: SesSmtpServer,
    rotation_service: LocalRotationService,
    silent_smtp: SilentSmtpServer,
    clock: VirtualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[str], SafetyRun]]:
    """``make_cross_run(variant)``: an installation in the SES account under the checks, with
    the fault injector installed after the function's clients act as its role."""
    for name, value in EMPTY_TRUST_STORE.items():
        monkeypatch.setenv(name, value)
    with FaultInjector(kion, smtp, silent_smtp).installed() as injector:
        ses_on_virtual_time(smtp, injector, clock, monkeypatch)

        def make(variant: str) -> SafetyRun:
            world = build_cross_world(variant, kion, smtp, rotation_service, accounts, "kion")
            return SafetyRun(world, injector)

        yield make


@pytest.mark.parametrize(("variant", "fault", "continuation"), SCENARIOS, ids=str)
def test_an_installation_in_another_account_survives_the_fault_at_assume_role(
    variant: str,
    fault: Fault,
    continuation: str,
    make_cross_run: Callable[[str], SafetyRun],
    clock: VirtualClock,
    record_property: Record,
) -> None:
    run = make_cross_run(variant)
    clock.now = 0.0
    elsewhere = keys_elsewhere()
    assert {account for account, *_ in elsewhere} == {DEPLOYMENT_ACCOUNT}  # the decoy's key
    record_property(CROSS_ACCOUNT_SCENARIO, 1)
    try:
        if fault.site.step == WATCH:
            _survive_at_the_watch(run, fault)
        else:
            run.injector.plan = fault
            run.finish(run.rotate(), continuation)
            assert run.injector.fired == [fault]
        assert not run.unclear_errors, run.unclear_errors
        run.assert_converged()
        record_property(CROSS_ACCOUNT_CONVERGED, 1)
    finally:
        record_property(KEYS_TOUCHED_ELSEWHERE, len(elsewhere ^ keys_elsewhere()))
        record_property(DELETED_IN_USE, len(run.deleted_in_use))
        record_property(DELETED_EARLY, len(run.deleted_before_window))
        record_property(ADOPTED_OUTRIGHT, len(run.adopted_deleted_outright))


def _survive_at_the_watch(run: SafetyRun, fault: Fault) -> None:
    """A clean rotation, then the watch's delete under ``fault``, then the next day's watch."""
    assert run.rotate() is None
    [replaced] = run.world.retired_keys()
    run.world.backdate_retirements()
    run.injector.plan = fault
    raised = watch_delete(run)
    assert run.injector.fired == [fault]
    assert raised is None or isinstance(raised, RotationError | LambdaKilled), repr(raised)
    run.check_invariants(f"after the watch met {fault}")
    run.pass_rollback_window()
    assert replaced not in run.world.access_key_ids()
    run.before = InstallationState.of(run.world)
    assert run.rotate() is None
