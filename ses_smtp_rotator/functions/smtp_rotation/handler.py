"""Entry point of the rotation function: Secrets Manager's four-step rotation protocol.

Secrets Manager invokes this once per step with the secret, the version being created
(ClientRequestToken) and the step name. The guards below decide whether a step has anything to
do; the steps themselves live in rotation.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.errors import RotationError, RotationStateError
from ses_smtp_rotator.functions.services.secrets_store import (
    CURRENT,
    PENDING,
    InstallationSecrets,
    KionApiKeys,
)
from ses_smtp_rotator.functions.smtp_rotation.steps import Rotation
from ses_smtp_rotator.functions.telemetry import logger, metrics, tracer

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


@dataclass(frozen=True)
class RotationEvent:
    secret_id: str
    token: str
    step: str
    rotation_token: str | None = None

    @classmethod
    def parse(cls, event: dict[str, Any]) -> RotationEvent:
        missing = [
            name for name in ("SecretId", "ClientRequestToken", "Step") if not event.get(name)
        ]
        if missing or event.get("Step") not in STEPS:
            raise RotationStateError(
                f"The invocation is not a Secrets Manager rotation event (missing or bad: "
                f"{', '.join(missing) or 'Step'}).",
                "Invoke this function through Secrets Manager rotation (RotateSecret), "
                "not directly.",
            )
        return cls(
            event["SecretId"],
            event["ClientRequestToken"],
            event["Step"],
            event.get("RotationToken"),
        )


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    _traced_handle()(RotationEvent.parse(event))


@cache
def _traced_handle() -> Callable[[RotationEvent], None]:
    return tracer().capture_method(handle)


def handle(event: RotationEvent, rotation: Rotation | None = None) -> None:
    """Run one step of one rotation, after the guard checks."""
    logger.append_keys(secret_id=event.secret_id, step=event.step, client_request_token=event.token)
    rotation = rotation or _rotation(event)
    with reported_step(event.step, failure_metric="RotationStepFailed"):
        _run_step(event, rotation)


@contextmanager
def reported_step(step: str, *, failure_metric: str) -> Iterator[None]:
    """Annotate the trace with the step and report its failure: the cause and fix of a
    RotationError (or the traceback of anything else) logged, ``failure_metric`` counted."""
    try:
        tracer().put_annotation("step", step)
        yield
    except RotationError as error:
        logger.error(error.cause, error=type(error).__name__, fix=error.fix)
        metrics.add_metric(failure_metric, MetricUnit.Count, 1)
        raise
    except Exception as error:
        logger.exception("Unexpected failure", error=type(error).__name__)
        metrics.add_metric(failure_metric, MetricUnit.Count, 1)
        raise


def _run_step(event: RotationEvent, rotation: Rotation) -> None:
    # No check of RotationEnabled: the function is attached without a native schedule (an
    # EventBridge schedule calls RotateSecret instead), and the version guards below are what
    # keep a step from working on the wrong version.
    if event.step == "createSecret":
        if _is_pending(rotation.secrets.version_stages().get(event.token), event.token):
            rotation.create_secret()
    else:
        version = rotation.secrets.version(event.token)
        if version is None:
            raise RotationStateError(
                f"Version {event.token} of the secret has no value: createSecret has not finished.",
                "Look at the createSecret error that came before; Secrets Manager retries the "
                "rotation, or start a new one.",
            )
        if _is_pending(list(version.stages), event.token):
            later_steps = {
                "setSecret": rotation.set_secret,
                "testSecret": rotation.test_secret,
                "finishSecret": rotation.finish_secret,
            }
            later_steps[event.step](version.secret)
        elif event.step == "finishSecret":
            # Already AWSCURRENT: an earlier attempt moved it, then failed to delete the key it
            # replaced. Deleting that key is what is left to do.
            rotation.retire_left_behind_key(version.secret)
    logger.info("Step finished")


def _is_pending(stages: list[str] | None, token: str) -> bool:
    """The standard guards: True when the step has work to do, False when it is already done."""
    if stages is None:
        raise RotationStateError(
            f"Version {token} is not a version of this secret.",
            "This request belongs to a rotation that no longer exists; start a new rotation.",
        )
    if CURRENT in stages:
        logger.info("This version is already AWSCURRENT; nothing to do")
        return False
    if PENDING not in stages:
        raise RotationStateError(
            f"Version {token} is not AWSPENDING (it is {', '.join(stages) or 'unlabelled'}).",
            "Another rotation replaced this one; start a new rotation if the secret still "
            "needs it.",
        )
    return True


def _rotation(event: RotationEvent) -> Rotation:
    config = RotationConfig.from_environment()
    return Rotation(
        InstallationSecrets(event.secret_id),
        event.token,
        config,
        _kion_api_keys(config.api_key_cache_seconds),
        rotation_token=event.rotation_token,
    )


@cache
def _kion_api_keys(cache_seconds: int) -> KionApiKeys:
    """One reader per warm function, so its cache spans the steps of a rotation."""
    return KionApiKeys(cache_seconds)
