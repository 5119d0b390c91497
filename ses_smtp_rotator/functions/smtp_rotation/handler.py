"""Entry point of the rotation function: the SMTP credential's steps under Secrets Manager's
rotation protocol (``functions/rotation_protocol.py``); the steps themselves live in steps.py.
An event ``{"Action": "rollback", ...}`` (from ``ses-smtp-rotator rollback``) runs rollback.py."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.errors import RotationError
from ses_smtp_rotator.functions.installation_secret import InstallationSecret
from ses_smtp_rotator.functions.rotation_protocol import (
    LabelledVersion,
    RotationEvent,
    RotationSteps,
    run_step,
)
from ses_smtp_rotator.functions.services import account_access
from ses_smtp_rotator.functions.services.secrets_store import (
    InstallationSecrets,
    KionApiKeys,
)
from ses_smtp_rotator.functions.smtp_rotation.notices import (
    FAILED,
    ROLLBACK_REFUSED,
    ROLLED_BACK,
    Outcome,
    announce,
)
from ses_smtp_rotator.functions.smtp_rotation.rollback import (
    ROLLBACK_ACTION,
    Rollback,
    RollbackRequest,
)
from ses_smtp_rotator.functions.smtp_rotation.steps import Rotation
from ses_smtp_rotator.functions.telemetry import logger, metrics, tracer


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any] | None:
    time_left_ms = context.get_remaining_time_in_millis
    if event.get("Action") == ROLLBACK_ACTION:
        return tracer().capture_method(roll_back)(RollbackRequest.parse(event), time_left_ms)
    _traced_handle()(RotationEvent.parse(event), time_left_ms=time_left_ms)
    return None


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
    try:
        run_step(
            event,
            protocol_steps(rotation),
            failure_metric="RotationStepFailed",
            outcome_metric="RotationOutcome",
        )
    except Exception as error:
        announce(Outcome(event.secret_id, FAILED, step=event.step, error=type(error).__name__))
        raise


def roll_back(
    request: RollbackRequest, time_left_ms: Callable[[], int] | None = None
) -> dict[str, Any]:
    """Run a rollback; answer what it did, or (for a cause the operator can act on) why it
    was refused, as a JSON object without secrets."""
    logger.append_keys(secret_id=request.secret_id, action=ROLLBACK_ACTION)
    rotation = _rotation(RotationEvent(request.secret_id, "", ROLLBACK_ACTION), time_left_ms)
    try:
        report = Rollback(rotation).run(request)
    except RotationError as error:
        logger.error(error.cause, error=type(error).__name__, fix=error.fix)
        metrics.add_metric("RollbackRefused", MetricUnit.Count, 1)
        announce(Outcome(request.secret_id, ROLLBACK_REFUSED, error=type(error).__name__))
        return {
            "outcome": "refused",
            "installation": request.secret_id,
            "error": type(error).__name__,
            "cause": error.cause,
            "fix": error.fix,
        }
    if not report.already_done:
        announce(
            Outcome(
                request.secret_id,
                ROLLED_BACK,
                current_access_key_id=report.restored_access_key_id,
                deactivated_access_key_id=report.retired_access_key_id,
                deletion_after=report.retired_deletion_after,
            )
        )
    return report.as_dict()


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
    account_access.new_invocation()
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
