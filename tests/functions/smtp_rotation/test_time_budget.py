"""Time budgets on the virtual clock: setSecret's slowest path, with every AWS call and Kion
request taking its worst case and SES accepting the new key late in its wait, fits the timeout
synth requires; with less time the step stops before Kion's PATCH, naming the setting."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rotation_world import RotationWorld, VirtualClock

from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.errors import TimeBudgetError
from ses_smtp_rotator.functions.services import aws_clients
from ses_smtp_rotator.functions.smtp_rotation.handler import lambda_handler
from ses_smtp_rotator.functions.time_budget import WorstCase
from ses_smtp_rotator.local.rotation_service import (
    LocalRotationService,
    RotationStepError,
    in_process_function,
)

WORST = WorstCase(RotationConfig.from_environment())


@pytest.fixture
def slow_world(world: RotationWorld, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple]:
    """A rotation after createSecret whose setSecret runs on a virtual clock on which SES takes
    all but the last moments of its wait, and each AWS call and Kion request its worst case."""
    token = world.start()
    world.step("createSecret", token)
    clock = world.wait_on_virtual_time(token, monkeypatch)
    world.kion.observers.append(lambda exchange: clock.sleep(WORST.kion_request()))
    world.kion.observers.append(_ses_waits_until_the_end(world, token))
    hooked = [aws_clients.client(service) for service in ("secretsmanager", "iam")]
    for client in hooked:
        client.meta.events.register(
            "before-call", _slow_aws_call(clock), unique_id="virtual-time-budget"
        )
    yield world, token, clock
    for client in hooked:
        client.meta.events.unregister("before-call", unique_id="virtual-time-budget")
    world.kion.observers.clear()


def _ses_waits_until_the_end(world: RotationWorld, token: str):
    """On Kion's GET before the SES wait: make SES refuse the new key for half of the wait (the
    logins that prove it then take most of the rest)."""
    made = world.smtp.key_lookup(world.version_fields(VersionId=token)["username"]).created_at

    def on_exchange(exchange: object) -> None:
        if not world.smtp.propagation_delay:
            age = world.smtp.clock() - made.timestamp()
            world.smtp.propagation_delay = age + WORST.config.ses_accept_timeout / 2

    return on_exchange


def _slow_aws_call(clock: VirtualClock):
    def advance(**_: object) -> None:
        clock.sleep(WORST.aws_call())

    return advance


def set_secret_within(world: RotationWorld, token: str, clock: VirtualClock, timeout: float):
    """Invoke setSecret as Lambda would, with ``timeout`` seconds on the virtual clock."""
    function = in_process_function(lambda_handler, timeout_seconds=timeout, clock=clock.monotonic)
    LocalRotationService(function).invoke_step(world.secret_id, token, "setSecret")


def test_the_slowest_set_secret_fits_the_timeout_synth_requires(slow_world):
    world, token, clock = slow_world
    required = WORST.steps()["setSecret"]
    started = clock.now

    set_secret_within(world, token, clock, required)

    assert world.kion_credential()[0] == world.version_fields(VersionId=token)["username"]
    elapsed = clock.now - started
    # The slow path ran: SES's wait in full besides the slow calls.
    assert elapsed > WORST.config.ses_accept_timeout / 2 + 5 * WORST.aws_call()
    assert elapsed <= required


def test_with_too_little_time_left_set_secret_stops_before_the_patch(slow_world):
    world, token, clock = slow_world
    before = world.kion_credential()
    old_rule = WORST.config.ses_accept_timeout + 60  # the SES wait plus a minute

    with pytest.raises(RotationStepError) as stopped:
        set_secret_within(world, token, clock, old_rule)

    assert isinstance(stopped.value.error, TimeBudgetError)
    assert "Stopped before giving Kion the new SMTP credential" in str(stopped.value.error)
    assert "Fix: Raise functionTimeoutSeconds" in str(stopped.value.error)
    assert world.kion_credential() == before
    assert not world.kion.requests_to("PATCH")


def step_with_seconds_left(world: RotationWorld, token: str, step: str, seconds: float) -> None:
    """Invoke ``step`` with exactly ``seconds`` left throughout (a clock that stands still)."""
    function = in_process_function(lambda_handler, timeout_seconds=seconds, clock=lambda: 0.0)
    LocalRotationService(function).invoke_step(world.secret_id, token, step)


def test_create_secret_makes_no_key_it_could_not_store(world):
    keys_before = world.access_key_ids()
    token = world.start()

    with pytest.raises(RotationStepError) as stopped:
        step_with_seconds_left(world, token, "createSecret", WORST.aws_call())

    assert isinstance(stopped.value.error, TimeBudgetError)
    assert "Stopped before creating an access key" in str(stopped.value.error)
    assert world.access_key_ids() == keys_before
    step_with_seconds_left(world, token, "createSecret", WORST.steps()["createSecret"])
    assert len(world.access_key_ids()) == 2


def test_finish_secret_leaves_awscurrent_where_it_is_without_the_time_to_move_it(world):
    token = world.start()
    world.run_steps(token, ("createSecret", "setSecret", "testSecret"))
    current = world.current_version_id()

    with pytest.raises(RotationStepError) as stopped:
        step_with_seconds_left(world, token, "finishSecret", WORST.aws_call() - 1)

    assert "Stopped before moving AWSCURRENT" in str(stopped.value.error)
    assert world.current_version_id() == current
    step_with_seconds_left(world, token, "finishSecret", WORST.steps()["finishSecret"])
    assert world.converged()
