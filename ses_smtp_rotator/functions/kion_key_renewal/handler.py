"""Entry point of the Kion API key renewal: Secrets Manager's four-step rotation protocol on the
Kion API key secret (the steps live in kion_key_renewal.py).

The same guards as the SMTP credential's rotation: a version that is already AWSCURRENT is done,
one that is not AWSPENDING belongs to a rotation that no longer exists.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.errors import RotationStateError
from ses_smtp_rotator.functions.kion_key_renewal.key_secret import ApiKeySecret
from ses_smtp_rotator.functions.kion_key_renewal.steps import KionKeyRenewal
from ses_smtp_rotator.functions.smtp_rotation.handler import (
    RotationEvent,
    _is_pending,
    reported_step,
)
from ses_smtp_rotator.functions.telemetry import logger, metrics, tracer


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    _traced_handle()(RotationEvent.parse(event))


@cache
def _traced_handle() -> Callable[[RotationEvent], None]:
    return tracer().capture_method(handle)


def handle(event: RotationEvent, renewal: KionKeyRenewal | None = None) -> None:
    """Run one step of one renewal, after the guard checks."""
    logger.append_keys(secret_id=event.secret_id, step=event.step, client_request_token=event.token)
    renewal = renewal or KionKeyRenewal(
        ApiKeySecret(event.secret_id),
        event.token,
        RotationConfig.from_environment(),
        rotation_token=event.rotation_token,
    )
    with reported_step(event.step, failure_metric="KionApiKeyRenewalStepFailed"):
        _run_step(event, renewal)


def _run_step(event: RotationEvent, renewal: KionKeyRenewal) -> None:
    if event.step == "createSecret":
        stages = renewal.secret.describe().stages.get(event.token)
        if _is_pending(stages, event.token):
            renewal.create_secret()
    else:
        version = renewal.secret.version(event.token)
        if version is None:
            raise RotationStateError(
                f"Version {event.token} of the Kion API key secret has no value: createSecret "
                "has not finished.",
                "Look at the createSecret error that came before; Secrets Manager retries the "
                "renewal, or start a new one.",
            )
        if _is_pending(list(version.stages), event.token):
            later_steps = {
                "setSecret": renewal.set_secret,
                "testSecret": renewal.test_secret,
                "finishSecret": renewal.finish_secret,
            }
            later_steps[event.step](version.stored)
    logger.info("Step finished")
