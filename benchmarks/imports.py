"""P1: importing the handler module, relative to ``import boto3`` alone, in fresh interpreters."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

_TIMED_IMPORT = (
    "import time; started = time.perf_counter(); import {module}; "
    "print(time.perf_counter() - started)"
)
# What the function's environment holds when Lambda imports it (no tracing daemon here).
_FUNCTION_ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME": "ses-smtp-rotator",
    "POWERTOOLS_METRICS_NAMESPACE": "SesSmtpRotator",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "AWS_REGION": "us-east-1",
}


def import_seconds(module: str) -> float:
    """Seconds to import ``module`` in a new interpreter (interpreter start-up not included)."""
    result = subprocess.run(
        [sys.executable, "-c", _TIMED_IMPORT.format(module=module)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **_FUNCTION_ENVIRONMENT},
    )
    return float(result.stdout.strip())


def measure(runs: int) -> tuple[float, float]:
    """Median seconds to import the rotation's handler and ``boto3``, alternating runs."""
    import_seconds(
        "ses_smtp_rotator.functions.smtp_rotation.handler"
    )  # warm the file cache and the bytecode
    handler, boto3 = [], []
    for _ in range(runs):
        handler.append(import_seconds("ses_smtp_rotator.functions.smtp_rotation.handler"))
        boto3.append(import_seconds("boto3"))
    return statistics.median(handler), statistics.median(boto3)
