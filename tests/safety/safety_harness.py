"""Drive rotations the way Secrets Manager does, and check the invariants after every step.

:class:`SafetyRun` invokes one step at a time through the local rotation service (so through the
real ``lambda_handler``), catches what a step raises (a :class:`LambdaKilled` included), and after
every invocation checks invariant 1 (SES accepts Kion's credential at the SMTP host Kion itself
sends through) and invariant 2 (no key was deleted while AWSCURRENT, AWSPENDING or Kion held it,
nor a key of another consumer; checked at the moment of each delete).
:meth:`SafetyRun.continue_after` goes on after a failure as Secrets Manager would, and
:meth:`SafetyRun.assert_converged` checks invariant 4's end state: Kion, AWSCURRENT and an Active
key agree, and that key replaced the key of before; the replaced key is Inactive, with its record,
and no other key of the installation is left; no AWSPENDING is left; SES accepts Kion's key at
Kion's host; no key of another consumer was touched. Then the rollback window passes, the watch
deletes the replaced key, and the next rotation must finish too. Every delete is also judged
against the retirement rules (:meth:`SafetyRun._check_delete`): a key that served Kion deleted
before its window passed, or an adopted key deleted without being retired first, is counted.
(:meth:`SafetyRun.assert_unchanged` is the other acceptable end: a rotation that failed and
changed nothing.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from typing import Any, NamedTuple

import boto3
import pytest
from botocore.exceptions import ClientError
from fault_injection import FaultInjector, LambdaKilled
from moto import mock_aws
from rotation_world import RotationWorld, VirtualClock

from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.errors import RollbackWindowError, RotationError
from ses_smtp_rotator.functions.retired_keys import ended_windows, retired_keys
from ses_smtp_rotator.functions.smtp_rotation import handler
from ses_smtp_rotator.functions.smtp_rotation.steps import Rotation
from ses_smtp_rotator.functions.watch.retired_key_deletion import delete_retired_keys
from ses_smtp_rotator.local.installation import provision_installation
from ses_smtp_rotator.local.kion_server import KionStandIn
from ses_smtp_rotator.local.rotation_service import (
    STEPS,
    LocalRotationService,
    RotationStepError,
    in_process_function,
)
from ses_smtp_rotator.local.smtp_server import KeyRecord, SesSmtpServer, SilentSmtpServer
from ses_smtp_rotator.local.tls import LoopbackCertificates

PENDING, CURRENT = "AWSPENDING", "AWSCURRENT"

# How the rotation goes on after a failed step:
REINVOKE = "reinvoke-step"  # Lambda retries the failed invocation, then the remaining steps run
RETRY = "retry-rotation"  # Secrets Manager retries the whole rotation with the same token
ABANDON = "abandon-then-rotate"  # an operator removes AWSPENDING; a new rotation, a new token
CONTINUATIONS = (REINVOKE, RETRY, ABANDON)

# The installations the scenarios start from: each takes another path through createSecret.
STEADY = "steady"  # the secret holds the key Kion uses, as after an earlier rotation
ADOPT = "adopt"  # a fresh deployment: the secret's credential is empty, Kion has a hand-made key
LEFTOVER = "leftover"  # the user also has a spare key that nothing uses
RESUME = "resume"  # an abandoned rotation left Kion on its new key; AWSCURRENT still on the old
VARIANTS = (STEADY, ADOPT, LEFTOVER, RESUME)

# How long an operator waits before abandoning a rotation: beyond the function's timeout and the
# margin createSecret gives a young key (FUNCTION_TIMEOUT_SECONDS defaults to 300).
OPERATOR_WAIT_SECONDS = 3600.0

# The function trusts the loopback CA through the secret's CA bundles and needs no public CA;
# an empty default trust store spares the ~20 ms OpenSSL takes to load it for every connection.
EMPTY_TRUST_STORE = {"SSL_CERT_FILE": "/nonexistent/ca.pem", "SSL_CERT_DIR": "/nonexistent"}


# SES accepts a new key this many (virtual) seconds after it was created: the wait in setSecret
# logs in three times (at 0, 1 and 2 s) before it is accepted.
PROPAGATION_SECONDS = 1.5
_EPOCH = 1_800_000_000.0  # the SMTP stand-in's clock reads this plus the virtual time


def ses_on_virtual_time(
    smtp: SesSmtpServer,
    injector: FaultInjector,
    clock: VirtualClock,
    monkeypatch: pytest.MonkeyPatch,
    propagation: float = PROPAGATION_SECONDS,
) -> None:
    """Make the SMTP stand-in judge a key's age on ``clock``: a key the function creates is
    refused for ``propagation`` virtual seconds; keys made before the scenario are long settled.
    Key ages then depend on nothing but the virtual clock, so every run logs in the same times."""
    created: dict[str, float] = {}
    lookup = smtp.key_lookup

    def lookup_on_virtual_time(access_key_id: str) -> KeyRecord | None:
        record = lookup(access_key_id)
        if record is None:
            return None
        made = _EPOCH + created.get(access_key_id, -86_400.0)
        return replace(record, created_at=datetime.fromtimestamp(made, UTC))

    injector.on_key_created = lambda access_key_id: created.setdefault(access_key_id, clock.now)
    monkeypatch.setattr(smtp, "key_lookup", lookup_on_virtual_time)
    monkeypatch.setattr(smtp, "clock", lambda: _EPOCH + clock.now)
    monkeypatch.setattr(smtp, "propagation_delay", propagation)


@contextmanager
def virtual_time(monkeypatch: pytest.MonkeyPatch, clock: VirtualClock) -> Iterator[VirtualClock]:
    """Make every rotation the handler builds wait on ``clock`` (Rotation's clock and sleep)."""
    monkeypatch.setattr(
        handler, "Rotation", partial(Rotation, clock=clock.monotonic, sleep=clock.sleep)
    )
    yield clock


class SurveyStandIns(NamedTuple):
    """The loopback systems a survey records a clean run against, hooked and on virtual time."""

    smtp: SesSmtpServer
    kion: KionStandIn
    injector: FaultInjector
    service: LocalRotationService
    clock: VirtualClock
    monkeypatch: pytest.MonkeyPatch
    accounts: Any = None


AccountsSetup = Callable[[pytest.MonkeyPatch, SesSmtpServer], AbstractContextManager[Any]]


@contextmanager
def survey_stand_ins(accounts: AccountsSetup | None = None) -> Iterator[SurveyStandIns]:
    """SES SMTP, Kion and moto with the fault injector installed (recording, no fault planned),
    the rotation function in process and every wait on one virtual clock. ``accounts`` sets up
    moto's accounts before the injector hooks the function's clients (its value is kept as
    ``accounts``)."""
    certificates = LoopbackCertificates()
    with (
        SesSmtpServer(certificates=certificates) as smtp,
        KionStandIn(certificates=certificates) as kion,
        SilentSmtpServer() as silent,
        mock_aws(),
        pytest.MonkeyPatch.context() as monkeypatch,
        virtual_time(monkeypatch, VirtualClock()) as clock,
        accounts(monkeypatch, smtp) if accounts else nullcontext() as prepared,
        FaultInjector(kion, smtp, silent).installed() as injector,
    ):
        for name, value in EMPTY_TRUST_STORE.items():
            monkeypatch.setenv(name, value)
        ses_on_virtual_time(smtp, injector, clock, monkeypatch)
        service = LocalRotationService(in_process_function(handler.lambda_handler))
        yield SurveyStandIns(smtp, kion, injector, service, clock, monkeypatch, prepared)


@cache
def observer_client(service: str) -> Any:
    """A boto3 client for the tests' own reads and writes: not the function's, so not hooked."""
    return boto3.client(service)


def build_world(
    variant: str,
    kion: KionStandIn,
    smtp: SesSmtpServer,
    service: LocalRotationService,
    name: str = "kion",
) -> RotationWorld:
    """Provision an installation in the state ``variant`` names (see VARIANTS)."""
    iam, secretsmanager = observer_client("iam"), observer_client("secretsmanager")
    installation = provision_installation(
        kion, smtp, name=name, adopt=variant == ADOPT, iam=iam, secretsmanager=secretsmanager
    )
    world = RotationWorld(installation, kion, smtp, service, iam=iam, secretsmanager=secretsmanager)
    if variant == LEFTOVER:
        world.iam.create_access_key(UserName=installation.iam_user_name)
    world.backdate_keys()  # keys made before the scenario are old (hand-made, left over)
    if variant == RESUME:
        token = world.start()
        world.run_steps(token, STEPS[:2])
        abandon(world)
    return world


def ses_refuses_new_keys(world: RotationWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on SES refuses every new key for an hour (propagation); existing keys work."""
    smtp, settled = world.smtp, world.access_key_ids()
    lookup = smtp.key_lookup

    def lookup_with_existing_keys_settled(access_key_id: str) -> KeyRecord | None:
        record = lookup(access_key_id)
        if record is None or access_key_id not in settled:
            return record
        return replace(record, created_at=record.created_at - timedelta(days=1))

    monkeypatch.setattr(smtp, "key_lookup", lookup_with_existing_keys_settled)
    monkeypatch.setattr(smtp, "propagation_delay", 3600.0)


def abandon(world: RotationWorld) -> list[str]:
    """Remove AWSPENDING from every version that is not AWSCURRENT, as an operator would, once
    the function has been quiet for its timeout (the user's keys are that much older: a key too
    young may still be in use by a running step, and createSecret leaves it alone)."""
    stages = world.stages()
    stuck = [vid for vid in stages if PENDING in stages[vid] and CURRENT not in stages[vid]]
    for version_id in stuck:
        world.secretsmanager.update_secret_version_stage(
            SecretId=world.secret_id, VersionStage=PENDING, RemoveFromVersionId=version_id
        )
    world.backdate_keys(OPERATOR_WAIT_SECONDS)
    return stuck


@dataclass(frozen=True)
class InstallationState:
    """What a rotation may change: the user's keys, AWSCURRENT, and Kion's credential."""

    keys: frozenset[str]
    current_version: str
    current_username: str
    kion: tuple[str, str]

    @classmethod
    def of(cls, world: RotationWorld) -> InstallationState:
        return cls(
            frozenset(world.access_key_ids()),
            world.current_version_id(),
            str(world.current().get("username") or ""),
            world.kion_credential(),
        )

    @property
    def replaced_key(self) -> str:
        """The key a rotation from here must replace: AWSCURRENT's, or (adoption) Kion's."""
        return self.current_username or self.kion[0]


@dataclass
class StepFailure:
    step: str
    token: str
    error: BaseException


@dataclass
class SafetyRun:
    """One installation under test, with the invariants checked after every step."""

    world: RotationWorld
    injector: FaultInjector
    steps_invoked: int = 0
    failures: list[StepFailure] = field(default_factory=list)
    kion_refused: list[str] = field(default_factory=list)
    deleted_in_use: list[str] = field(default_factory=list)
    deleted_before_window: list[str] = field(default_factory=list)
    adopted_deleted_outright: list[str] = field(default_factory=list)
    watch_deletions: int = 0  # retired keys the watch deleted once their window passed
    unclear_errors: list[str] = field(default_factory=list)
    kion_may_start_unconfigured: bool = False  # Kion without SMTP credential until it gets one
    foreign_keys: set[str] = field(default_factory=set)  # keys of the user's other consumers
    before: InstallationState | None = None  # the state the current run started from

    def __post_init__(self) -> None:
        self.injector.on_delete = self._check_delete
        self.before = InstallationState.of(self.world)
        # Keys that served Kion, which only retirement may remove; the adopted one by name.
        self.served: set[str] = {self.before.current_username, self.before.kion[0]} - {""}
        self.adopted = "" if self.before.current_username else self.before.kion[0]

    # -- acting -----------------------------------------------------------------------------

    def invoke(self, step: str, token: str) -> StepFailure | None:
        """Invoke one step as Secrets Manager does; check the invariants after it."""
        failure = None
        with self.injector.invoking(step):
            try:
                self.world.step(step, token)
            except RotationStepError as error:
                failure = StepFailure(step, token, error.error)
            except LambdaKilled as killed:
                failure = StepFailure(step, token, killed)
        self.steps_invoked += 1
        outcome = "ok" if failure is None else type(failure.error).__name__
        self.injector.trace.append(f"{step} -> {outcome}")
        if failure is not None:
            self.failures.append(failure)
            if not isinstance(failure.error, RotationError | LambdaKilled):
                self.unclear_errors.append(
                    f"{step}: {type(failure.error).__name__}: {failure.error}"
                )
        self.check_invariants(f"after {step} (token {token[:8]})")
        return failure

    def run(self, token: str, steps: tuple[str, ...] = STEPS) -> StepFailure | None:
        """Invoke ``steps`` in order; stop at the first that fails and return its failure."""
        for step in steps:
            failure = self.invoke(step, token)
            if failure is not None:
                return failure
        return None

    def rotate(self) -> StepFailure | None:
        """Start a new rotation and run it; return the first failure, if any."""
        return self.run(self.world.start())

    def continue_after(self, failure: StepFailure, continuation: str) -> StepFailure | None:
        """Go on after ``failure`` as Secrets Manager (or an operator) would."""
        # Time passes before any retry, past the function's timeout: a key the failed step made
        # is then old enough for createSecret to clean up (a younger one it leaves alone).
        self.world.backdate_keys(OPERATOR_WAIT_SECONDS)
        if isinstance(failure.error, RollbackWindowError):
            # The operator does as the error says: waits out the window (the watch deletes).
            self.pass_rollback_window()
        if continuation == REINVOKE:
            return self.run(failure.token, STEPS[STEPS.index(failure.step) :])
        if continuation == RETRY:
            assert self.world.start(failure.token) == failure.token
            return self.run(failure.token)
        abandon(self.world)
        return self.rotate()

    def finish(self, failure: StepFailure | None, continuation: str, attempts: int = 3) -> None:
        """Go on by ``continuation`` after each failure until the rotation finishes; assert it
        does within ``attempts`` continuations (one per planned fault is enough)."""
        for _ in range(attempts):
            if failure is None:
                return
            failure = self.continue_after(failure, continuation)
        assert failure is None, f"{continuation} failed at {failure.step}: {failure.error}"

    # -- checking ---------------------------------------------------------------------------

    def check_invariants(self, moment: str) -> None:
        """Invariants 1 and 2, now. Records what it finds (for the figures), then asserts."""
        username = self.world.kion_credential()[0]
        # The decision of the SMTP stand-in at Kion's own host (none there: refused), asked
        # directly: what AUTH would answer right now where Kion sends.
        outcome = self.world.kion_outcome()
        self.kion_may_start_unconfigured &= not username
        if outcome not in ("accepted", None) and not self.kion_may_start_unconfigured:
            self.kion_refused.append(f"{moment}: SES refuses Kion's key {username} ({outcome})")
        assert not self.kion_refused, f"invariant 1 broken: {self.kion_refused}"
        assert not self.deleted_in_use, f"invariant 2 broken: {self.deleted_in_use}"
        assert not self.deleted_before_window, f"deleted early: {self.deleted_before_window}"
        assert not self.adopted_deleted_outright, f"adopted: {self.adopted_deleted_outright}"

    def assert_converged(self) -> None:
        """Invariant 4's end state; then the window passes and the watch deletes the replaced
        key; then proof that the next rotation is not stuck."""
        self.assert_rotated("after the run")
        self.pass_rollback_window()
        own_keys = self.world.access_key_ids() - self.foreign_keys
        assert own_keys == {self.world.kion_credential()[0]}, (
            f"after the window and the watch, the installation's keys are {sorted(own_keys)}"
        )
        self.before = InstallationState.of(self.world)
        self.served |= {self.before.current_username}
        failure = self.rotate()
        assert failure is None, f"the next rotation failed at {failure.step}: {failure.error}"
        self.assert_rotated("after one more rotation")

    def pass_rollback_window(self) -> None:
        """Eight days later: the daily watch deletes the retired keys whose window passed."""
        self.world.backdate_retirements()
        retired = set(self.world.retired_keys())
        for _ in range(2):  # a watch that failed (a fault of its own) runs again the next day
            try:
                with self.injector.invoking("watch"):
                    delete_retired_keys(
                        self.world.secret_id,
                        RotationConfig.from_environment(),
                        now=datetime.now(UTC),
                    )
                break
            except (RotationError, LambdaKilled):
                self.check_invariants("after a failed watch")
        self.watch_deletions += len(retired - self.world.access_key_ids())
        self.check_invariants("after the watch")

    def assert_rotated(self, moment: str) -> None:
        """The rotation finished: the installation's only key is Kion's, AWSCURRENT holds it, it
        replaced the key of before, nothing is left pending, and SES takes it at Kion's host."""
        world, before = self.world, self.before
        assert before is not None
        current = world.current()
        kion_username, kion_password = world.kion_credential()
        statuses = world.key_statuses()
        own_keys = set(statuses) - self.foreign_keys
        self._assert_settled(moment)
        assert (current["username"], current["password"]) == (kion_username, kion_password), (
            f"{moment}: Kion uses {kion_username}, AWSCURRENT holds {current['username']}"
        )
        assert statuses.get(kion_username) == "Active", f"{moment}: Kion's key is not Active"
        left = own_keys - {kion_username}
        assert len(left) <= 1, (
            f"{moment}: the installation's keys are {sorted(own_keys)}: more than Kion's and "
            "the one it replaced"
        )
        for retired in left:
            assert statuses[retired] == "Inactive", f"{moment}: replaced key {retired} is Active"
            assert retired in world.retired_keys(), f"{moment}: {retired} has no record"
        assert kion_username != before.replaced_key, (
            f"{moment}: Kion still uses {kion_username}, the key of before the rotation"
        )

    def assert_unchanged(self, moment: str = "after the failed rotation") -> None:
        """The rotation failed cleanly: keys, AWSCURRENT and Kion as before, nothing pending."""
        assert self.before is not None
        self._assert_settled(moment)
        now = InstallationState.of(self.world)
        assert now == self.before, f"{moment}: the installation changed from {self.before} to {now}"

    def _assert_settled(self, moment: str) -> None:
        stages = self.world.stages()
        # Not even on AWSCURRENT: a later write of AWSCURRENT would carry it onto AWSPREVIOUS.
        pending = [vid for vid in stages if PENDING in stages[vid]]
        assert not pending, f"{moment}: AWSPENDING left on {pending}"
        missing = self.foreign_keys - self.world.access_key_ids()
        assert not missing, f"{moment}: keys of other consumers deleted: {sorted(missing)}"
        # None: Kion sends through a relay of its own, which the installation declares.
        verdict = self.world.kion_outcome()
        assert verdict in ("accepted", None), f"{moment}: SES refuses Kion's credential ({verdict})"

    def _check_delete(self, access_key_id: str) -> None:
        holders = {
            "AWSCURRENT": self._username(VersionStage=CURRENT),
            "AWSPENDING": self._username(VersionStage=PENDING),
            "Kion": self.world.kion_credential()[0],
            "another consumer": access_key_id if access_key_id in self.foreign_keys else None,
        }
        held_by = [holder for holder, username in holders.items() if username == access_key_id]
        if held_by:
            holders_text = ", ".join(held_by)
            self.deleted_in_use.append(f"{access_key_id} deleted while {holders_text} held it")
        self._check_retirement_of(access_key_id)

    def _check_retirement_of(self, access_key_id: str) -> None:
        """A key that served Kion may go only retired (Inactive, recorded) and once its window
        passed (or the operator ended it); the adopted key never without being retired."""
        if access_key_id not in self.served:
            return  # a spare or orphan key nothing ever used
        tags = self.world.tags()
        record = retired_keys(tags).get(access_key_id)
        status = self.world.key_statuses().get(access_key_id)
        grace = timedelta(days=RotationConfig.from_environment().previous_key_grace_days)
        early = record is None or (
            datetime.now(UTC) < record.window_ends(grace)
            and access_key_id not in ended_windows(tags)
        )
        if early:
            self.deleted_before_window.append(f"{access_key_id} deleted before its window")
        if access_key_id == self.adopted and (record is None or status != "Inactive"):
            self.adopted_deleted_outright.append(f"adopted {access_key_id} deleted outright")

    def _username(self, **selector: str) -> str | None:
        try:
            fields: Any = self.world.version_fields(**selector)
        except (ClientError, ValueError):
            return None  # no such version, no value yet, or not JSON
        return fields.get("username") if isinstance(fields, dict) else None
