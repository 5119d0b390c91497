"""P8: ``ses-smtp-rotator rotate --all`` over N installations in the local service, beside
Secrets Manager's quota of 50 RotateSecret requests per second per region.

The command line runs as shipped (``cli.main``) against moto in this process, with Secrets
Manager's rotation service stood in by ``local.moto_rotation`` (RotateSecret labels a pending
version and answers at once; the function it would invoke does nothing here, so only the
command's own requests are measured). Every RotateSecret request is recorded as moto receives
it: when it began and how many were in flight. moto answers in about a millisecond where AWS
takes tens, so the rate measured is the most the command can ask for from this machine.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import boto3
from moto import mock_aws

from ses_smtp_rotator.cli import main as cli
from ses_smtp_rotator.cli.commands import fleet
from ses_smtp_rotator.cli.fleet import DEPLOYMENT_TAG, INSTALLATION_TAG
from ses_smtp_rotator.local.moto_rotation import MotoRotateSecretHook

REGION = "us-east-1"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:123456789012:function:ses-smtp-rotator-rotation"


@dataclass
class RotateSecretLog:
    """When each RotateSecret began, and the most in flight at once."""

    began: list[float] = field(default_factory=list)
    in_flight: int = 0
    peak_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wrap(self, rotate_secret: Any) -> Any:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.began.append(time.perf_counter())
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                return rotate_secret(*args, **kwargs)
            finally:
                with self._lock:
                    self.in_flight -= 1

        return recorded

    def busiest_second(self) -> int:
        """The most RotateSecret requests begun within any one second."""
        began = sorted(self.began)
        busiest, first = 0, 0
        for last, moment in enumerate(began):
            while moment - began[first] >= 1.0:
                first += 1
            busiest = max(busiest, last - first + 1)
        return busiest


@dataclass(frozen=True)
class FleetRotationFigures:
    installations: int
    parallel: int
    paced: bool
    seconds: float
    rotate_secret_calls: int
    busiest_second: int
    peak_in_flight: int
    exit_code: int


def simulate(installations: int = 500, *, parallel: int = 4, paced: bool = True) -> Any:
    """``rotate --all --yes --parallel N`` over ``installations`` secrets; without ``paced``,
    the command's pacing is switched off (what it asked for before it paced itself)."""
    saved = {name: os.environ.pop(name, None) for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE")}
    log = RotateSecretLog()
    try:
        with mock_aws():
            hook = MotoRotateSecretHook(lambda event: None, FUNCTION_ARN, region=REGION).install()
            try:
                _provision(installations)
                backend = hook._backend
                backend.rotate_secret = log.wrap(backend.rotate_secret)
                rate = fleet.ROTATE_SECRET_RATE if paced else 1e9
                argv = ["rotate", "--all", "--yes", "--parallel", str(parallel)]
                output = io.StringIO()
                started = time.perf_counter()
                with (
                    mock.patch.object(fleet, "ROTATE_SECRET_RATE", rate),
                    contextlib.redirect_stdout(output),
                ):
                    code = cli.main(argv)
                seconds = time.perf_counter() - started
                hook.wait_idle(timeout=60)
            finally:
                hook.uninstall()
    finally:
        os.environ.update({name: value for name, value in saved.items() if value is not None})
    return FleetRotationFigures(
        installations,
        parallel,
        paced,
        seconds,
        len(log.began),
        log.busiest_second(),
        log.peak_in_flight,
        code,
    )


def _provision(installations: int) -> None:
    """Installation secrets as the stack makes them: tagged, the rotation function attached."""
    secretsmanager = boto3.client("secretsmanager", region_name=REGION)
    settings = {"username": "", "password": "", "ses_region": REGION}
    for number in range(installations):
        name = f"kion-{number:04d}"
        created = secretsmanager.create_secret(
            Name=f"ses-smtp-rotator/fleet/smtp/{name}",
            SecretString=json.dumps(settings),
            Tags=[
                {"Key": INSTALLATION_TAG, "Value": name},
                {"Key": DEPLOYMENT_TAG, "Value": "fleet"},
            ],
        )
        secretsmanager.rotate_secret(
            SecretId=created["ARN"], RotationLambdaARN=FUNCTION_ARN, RotateImmediately=False
        )
