"""X-Ray tracing switched on for the safety suite, with every segment captured in this process.

The function's Powertools Tracer sits on the AWS X-Ray SDK, which hands finished segments and
subsegments to an emitter (normally UDP to the X-Ray daemon). :func:`tracing_on` makes the Tracer
active as it is in Lambda, gives the recorder a :class:`CapturedTraces` emitter instead of the
daemon, and opens one sampled segment around the test: what the function annotates, the metadata
it records (its errors included) and the exceptions the SDK attaches are kept as the JSON
documents the daemon would have received, for the secret scan.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import aws_xray_sdk
import pytest
from aws_lambda_powertools import Tracer
from aws_xray_sdk.core import xray_recorder
from aws_xray_sdk.core.context import Context
from aws_xray_sdk.core.sampling.local.sampler import LocalSampler

from ses_smtp_rotator.functions import telemetry
from ses_smtp_rotator.functions.smtp_rotation import handler


class CapturedTraces:
    """An X-Ray emitter that keeps what it is given to send, as JSON documents."""

    def __init__(self) -> None:
        self.documents: list[str] = []

    def send_entity(self, entity: Any) -> None:
        self.documents.append(entity.serialize())

    def set_daemon_address(self, address: str | None) -> None:
        """There is no daemon: nothing leaves the process."""


class _Relay:
    """The recorder's one emitter: passes entities on to the capture of the running test."""

    target: CapturedTraces | None = None

    def send_entity(self, entity: Any) -> None:
        if self.target is not None:
            self.target.send_entity(entity)

    def set_daemon_address(self, address: str | None) -> None:
        """There is no daemon: nothing leaves the process."""


@cache
def _relay() -> _Relay:
    """Configure the recorder once (the default sampler would build a botocore client each
    time): sample everything, ignore calls made outside a segment, emit to the relay."""
    relay = _Relay()
    xray_recorder.configure(
        emitter=relay,
        sampler=LocalSampler(),
        sampling=False,
        context=Context(context_missing="IGNORE_ERROR"),
        context_missing="IGNORE_ERROR",
    )
    return relay


def _fresh_tracer() -> None:
    """Forget the Tracer made so far, so the next invocation makes one from the environment."""
    Tracer._reset_config()
    telemetry.tracer.cache_clear()
    handler._traced_handle.cache_clear()


@contextmanager
def tracing_on(monkeypatch: pytest.MonkeyPatch, captured: CapturedTraces) -> Iterator[None]:
    """Trace as in Lambda for the duration of the block, into ``captured``."""
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")  # the Tracer traces only "in Lambda"
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    _fresh_tracer()
    relay = _relay()
    relay.target = captured
    aws_xray_sdk.global_sdk_config.set_sdk_enabled(True)
    xray_recorder.begin_segment("safety-test")
    try:
        yield
    finally:
        xray_recorder.end_segment()
        relay.target = None
        aws_xray_sdk.global_sdk_config.set_sdk_enabled(False)
        _fresh_tracer()
