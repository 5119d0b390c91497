"""Entry point of the Kion API key renewal: its steps (steps.py) under Secrets Manager's rotation
protocol (``functions/rotation_protocol.py``), on the Kion API key secret."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.kion_key_renewal.key_secret import ApiKeySecret, StoredApiKey
from ses_smtp_rotator.functions.kion_key_renewal.steps import KionKeyRenewal
from ses_smtp_rotator.functions.rotation_protocol import (
    LabelledVersion,
    RotationEvent,
    RotationSteps,
    run_step,
)
from ses_smtp_rotator.functions.telemetry import logger, metrics, tracer


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    _traced_handle()(RotationEvent.parse(event), time_left_ms=context.get_remaining_time_in_millis)


@cache
def _traced_handle() -> Callable[[RotationEvent], None]:
    return tracer().capture_method(handle)


def handle(
    event: RotationEvent,
    renewal: KionKeyRenewal | None = None,
    *,
    time_left_ms: Callable[[], int] | None = None,
) -> None:
    """Run one step of one renewal, after the guard checks; ``time_left_ms`` is the Lambda
    context's clock, which the step checks before each effect."""
    renewal = renewal or KionKeyRenewal(
        ApiKeySecret(event.secret_id),
        event.token,
        RotationConfig.from_environment(),
        rotation_token=event.rotation_token,
        time_left_ms=time_left_ms,
    )
    run_step(event, protocol_steps(renewal), failure_metric="KionApiKeyRenewalStepFailed")


def protocol_steps(renewal: KionKeyRenewal) -> RotationSteps[StoredApiKey]:
    """The renewal's steps as the protocol runs them (nothing is left to finish again)."""

    def version(token: str) -> LabelledVersion[StoredApiKey] | None:
        stored = renewal.secret.version(token)
        return None if stored is None else LabelledVersion(list(stored.stages), stored.stored)

    return RotationSteps(
        version_stages=renewal.version_stages,
        version=version,
        create_secret=renewal.create_secret,
        set_secret=renewal.set_secret,
        test_secret=renewal.test_secret,
        finish_secret=renewal.finish_secret,
        release_pending=renewal.secret.release_pending,
        subject="Kion API key secret",
        process="renewal",
    )
