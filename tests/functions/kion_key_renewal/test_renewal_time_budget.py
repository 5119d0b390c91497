"""The renewal's time budget: with too little of the invocation left, createSecret makes no Kion
key it could not store, and finishSecret leaves AWSCURRENT and the old key alone; each completes
when run again with the time its step needs."""

from __future__ import annotations

import pytest
from kion_key_world import KeyRenewalWorld

from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.errors import TimeBudgetError
from ses_smtp_rotator.functions.kion_key_renewal.handler import lambda_handler
from ses_smtp_rotator.functions.time_budget import Effect, WorstCase
from ses_smtp_rotator.local.rotation_service import (
    LocalRotationService,
    RotationStepError,
    in_process_function,
)

WORST = WorstCase(RotationConfig.from_environment())


def step_with_seconds_left(renewal: KeyRenewalWorld, token: str, step: str, seconds: float) -> None:
    """Invoke ``step`` with exactly ``seconds`` left throughout (a clock that stands still)."""
    function = in_process_function(lambda_handler, timeout_seconds=seconds, clock=lambda: 0.0)
    LocalRotationService(function).invoke_step(renewal.secret_id, token, step)


def test_create_secret_makes_no_kion_key_it_could_not_store(renewal: KeyRenewalWorld) -> None:
    token = renewal.start()
    too_little = WORST.effect(Effect.KION_KEY_CREATE) - 1

    with pytest.raises(RotationStepError) as stopped:
        step_with_seconds_left(renewal, token, "createSecret", too_little)

    assert isinstance(stopped.value.error, TimeBudgetError)
    assert "Stopped before creating a Kion App API key" in str(stopped.value.error)
    assert "renewal function's timeout" in stopped.value.error.fix
    assert renewal.renewal_keys() == []
    step_with_seconds_left(renewal, token, "createSecret", WORST.renewal_steps()["createSecret"])
    assert len(renewal.renewal_keys()) == 1


def test_finish_secret_moves_nothing_without_the_time_to(renewal: KeyRenewalWorld) -> None:
    replaced = renewal.current()["api_key_id"]
    token = renewal.start()
    renewal.run_steps(token, ("createSecret", "setSecret", "testSecret"))

    with pytest.raises(RotationStepError) as stopped:
        step_with_seconds_left(renewal, token, "finishSecret", WORST.aws_call() - 1)

    assert "Stopped before moving AWSCURRENT" in str(stopped.value.error)
    assert "AWSCURRENT" not in renewal.stages()[token]
    assert renewal.record(replaced) is not None
    step_with_seconds_left(renewal, token, "finishSecret", WORST.renewal_steps()["finishSecret"])
    assert "AWSCURRENT" in renewal.stages()[token]
    assert renewal.record(replaced) is None
