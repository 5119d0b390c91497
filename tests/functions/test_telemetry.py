"""Every metric a deployed function publishes names its deployment (``DEPLOYMENT_NAME``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PUBLISH_ONE = (
    "from ses_smtp_rotator.functions.telemetry import metrics\n"
    "metrics.add_metric(name='RotationSucceeded', unit='Count', value=1)\n"
    "metrics.flush_metrics()\n"
)


def published(environment: dict[str, str]) -> dict:
    """The EMF record a fresh function process prints for one metric."""
    env = {name: value for name, value in os.environ.items() if name != "DEPLOYMENT_NAME"}
    env.update(PYTHONPATH=str(ROOT), **environment)
    done = subprocess.run(
        [sys.executable, "-c", PUBLISH_ONE], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_deployed_functions_metrics_carry_the_deployment_as_a_dimension() -> None:
    record = published({"DEPLOYMENT_NAME": "SesSmtpRotatorDr"})
    [directive] = record["_aws"]["CloudWatchMetrics"]
    assert sorted(directive["Dimensions"][0]) == ["deployment", "service"]
    assert record["deployment"] == "SesSmtpRotatorDr"


def test_without_a_deployment_name_the_metrics_carry_the_service_alone() -> None:
    record = published({})
    [directive] = record["_aws"]["CloudWatchMetrics"]
    assert directive["Dimensions"] == [["service"]]
