"""Secrets Manager's four-step rotation protocol, shared by both rotations.

Secrets Manager invokes a rotation function once per step with the secret, the version being
created (ClientRequestToken) and the step name. This module reads that event, decides with the
standard guards whether the step has anything to do, dispatches it to the rotation's own step and
reports a failure. The SMTP credential's rotation (``smtp_rotation``) and the Kion API key renewal
(``kion_key_renewal``) each supply only their steps, as a ``RotationSteps``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SecretsManagerEvent

from ses_smtp_rotator.functions.errors import RotationError, RotationStateError
from ses_smtp_rotator.functions.installation_metrics import (
    installation_name,
    put_installation_metrics,
)
from ses_smtp_rotator.functions.services.secrets_store import CURRENT, PENDING
from ses_smtp_rotator.functions.telemetry import logger, metrics, tracer

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")

Value = TypeVar("Value")


@dataclass(frozen=True)
class RotationEvent:
    """One step of one rotation, as Secrets Manager asks for it."""

    secret_id: str
    token: str
    step: str
    rotation_token: str | None = None

    @classmethod
    def parse(cls, event: dict[str, Any]) -> RotationEvent:
        """The event, or a RotationStateError when it is not a Secrets Manager rotation event."""
        rotation = SecretsManagerEvent(event)
        missing = [
            name for name in ("SecretId", "ClientRequestToken", "Step") if not rotation.get(name)
        ]
        if missing or rotation.get("Step") not in STEPS:
            raise RotationStateError(
                f"The invocation is not a Secrets Manager rotation event (missing or bad: "
                f"{', '.join(missing) or 'Step'}).",
                "Invoke this function through Secrets Manager rotation (RotateSecret), "
                "not directly.",
            )
        return cls(
            rotation.secret_id,
            rotation.client_request_token,
            rotation.step,
            rotation.get("RotationToken"),
        )


@dataclass(frozen=True)
class LabelledVersion(Generic[Value]):
    """A version of the rotated secret: its labels and its value."""

    stages: list[str]
    value: Value = field(repr=False)  # secrets: never in a repr


@dataclass(frozen=True)
class RotationSteps(Generic[Value]):
    """What one rotation gives the protocol: how to read its secret's versions, and its steps.

    ``subject`` and ``process`` name the secret and the rotation in the refusals ("secret",
    "rotation"; "Kion API key secret", "renewal"). ``finish_again`` runs when finishSecret finds
    its version already AWSCURRENT (an earlier attempt moved it, then failed before the end);
    ``release_pending`` takes AWSPENDING off such a version.
    """

    version_stages: Callable[[str], list[str] | None]
    version: Callable[[str], LabelledVersion[Value] | None]
    create_secret: Callable[[], None]
    set_secret: Callable[[Value], None]
    test_secret: Callable[[Value], None]
    finish_secret: Callable[[Value], None]
    release_pending: Callable[[str], object]
    finish_again: Callable[[Value], None] | None = None
    subject: str = "secret"
    process: str = "rotation"


def run_step(
    event: RotationEvent,
    steps: RotationSteps[Value],
    *,
    failure_metric: str,
    outcome_metric: str | None = None,
) -> None:
    """Run one step after the guard checks, with the step's logging, trace and failure metric.
    ``outcome_metric``, per installation, records 0 when a step fails and 1 when finishSecret
    finishes: its latest value is the outcome of the installation's last rotation."""
    logger.append_keys(secret_id=event.secret_id, step=event.step, client_request_token=event.token)
    try:
        with reported_step(event.step, failure_metric=failure_metric):
            _dispatch(event, steps)
    except Exception:
        _record_outcome(event, outcome_metric, succeeded=False)
        raise
    if event.step == "finishSecret":
        _record_outcome(event, outcome_metric, succeeded=True)


def _record_outcome(event: RotationEvent, metric: str | None, *, succeeded: bool) -> None:
    if metric is not None:
        put_installation_metrics(
            installation_name(event.secret_id), {metric: (MetricUnit.Count, float(succeeded))}
        )


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


def _dispatch(event: RotationEvent, steps: RotationSteps[Value]) -> None:
    """The standard guards, then the step: the version's labels (createSecret) or its value with
    its labels (the later steps) say whether the step has work to do."""
    # No check of RotationEnabled: the functions are attached without a native schedule (an
    # EventBridge schedule calls RotateSecret instead), and the version guards below are what
    # keep a step from working on the wrong version.
    if event.step == "createSecret":
        if is_pending(steps.version_stages(event.token), event.token):
            steps.create_secret()
    else:
        version = steps.version(event.token)
        if version is None:
            raise RotationStateError(
                f"Version {event.token} of the {steps.subject} has no value: createSecret "
                "has not finished.",
                "Look at the createSecret error that came before; Secrets Manager retries the "
                f"{steps.process}, or start a new one.",
            )
        if is_pending(version.stages, event.token):
            later_steps = {
                "setSecret": steps.set_secret,
                "testSecret": steps.test_secret,
                "finishSecret": steps.finish_secret,
            }
            later_steps[event.step](version.value)
        elif event.step == "finishSecret":
            if PENDING in version.stages:
                steps.release_pending(event.token)
            if steps.finish_again is not None:
                steps.finish_again(version.value)
    logger.info("Step finished")


def is_pending(stages: list[str] | None, token: str) -> bool:
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
