"""Entry point of the rotation function: the SMTP credential's steps under Secrets Manager's
rotation protocol (``functions/rotation_protocol.py``); the steps themselves live in steps.py."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.installation_secret import InstallationSecret
from ses_smtp_rotator.functions.rotation_protocol import (
    LabelledVersion,
    RotationEvent,
    RotationSteps,
    run_step,
)
from ses_smtp_rotator.functions.services.secrets_store import (
    InstallationSecrets,
    KionApiKeys,
)
from ses_smtp_rotator.functions.smtp_rotation.steps import Rotation
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
    rotation: Rotation | None = None,
    *,
    time_left_ms: Callable[[], int] | None = None,
) -> None:
    """Run one step of one rotation, after the guard checks; ``time_left_ms`` is the Lambda
    context's clock, which the step checks before each effect."""
    rotation = rotation or _rotation(event, time_left_ms)
    run_step(
        event,
        protocol_steps(rotation),
        failure_metric="RotationStepFailed",
        outcome_metric="RotationOutcome",
    )


def protocol_steps(rotation: Rotation) -> RotationSteps[InstallationSecret]:
    """The rotation's steps as the protocol runs them. finishSecret on a version that is already
    AWSCURRENT deletes the key it replaced: an earlier attempt moved the label, then failed."""

    def version(token: str) -> LabelledVersion[InstallationSecret] | None:
        stored = rotation.secrets.version(token)
        return None if stored is None else LabelledVersion(list(stored.stages), stored.secret)

    return RotationSteps(
        version_stages=lambda token: rotation.secrets.version_stages().get(token),
        version=version,
        create_secret=rotation.create_secret,
        set_secret=rotation.set_secret,
        test_secret=rotation.test_secret,
        finish_secret=rotation.finish_secret,
        release_pending=rotation.secrets.release_pending,
        finish_again=rotation.retire_left_behind_key,
    )


def _rotation(event: RotationEvent, time_left_ms: Callable[[], int] | None) -> Rotation:
    config = RotationConfig.from_environment()
    return Rotation(
        InstallationSecrets(event.secret_id),
        event.token,
        config,
        _kion_api_keys(config.api_key_cache_seconds),
        rotation_token=event.rotation_token,
        time_left_ms=time_left_ms,
    )


@cache
def _kion_api_keys(cache_seconds: int) -> KionApiKeys:
    """One reader per warm function, so its cache spans the steps of a rotation."""
    return KionApiKeys(cache_seconds)
