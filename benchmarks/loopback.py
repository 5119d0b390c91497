"""A Kion installation on loopback servers for the benchmarks: moto's server for AWS, the SES SMTP
and Kion stand-ins, and the rotation function run in this process through ``lambda_handler``
(the deployed entry point), invoked step by step as Secrets Manager invokes it.

The function's environment is its production one (the Kion API key cached for 60 s, SES waited for
up to 120 s); only X-Ray tracing is off, as there is no daemon here.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from ses_smtp_rotator.local.installation import LocalInstallation, provision_installation
from ses_smtp_rotator.local.kion_server import KionStandIn
from ses_smtp_rotator.local.rotation_service import LocalRotationService, in_process_function
from ses_smtp_rotator.local.smtp_server import SesSmtpServer
from ses_smtp_rotator.local.tls import LoopbackCertificates

REGION = "us-east-1"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_SESSION_TOKEN": "bench",
}


@dataclass
class CallCounter:
    """Counts AWS API calls (botocore's before-call event), by ``service.Operation``."""

    calls: Counter[str] = field(default_factory=Counter)

    def __call__(self, event_name: str, **kwargs: Any) -> None:
        _, service, operation = event_name.split(".", 2)
        self.calls[f"{service}.{operation}"] += 1

    def attach(self, session: Any) -> None:
        session.events.register("before-call", self)

    @property
    def total(self) -> int:
        return sum(self.calls.values())


@dataclass
class Counts:
    """What one rotation cost."""

    seconds: float
    aws_calls: Counter[str]
    kion_requests: int
    smtp_logins: int
    smtp_propagation_refusals: int

    @property
    def aws_total(self) -> int:
        return sum(self.aws_calls.values())


class LoopbackWorld:
    """Starts the servers, provisions one installation, and rotates it through the handler."""

    def __init__(self) -> None:
        self.counter = CallCounter()
        self._sink = io.StringIO()
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.certificates = LoopbackCertificates()
        self.smtp = SesSmtpServer(certificates=self.certificates)
        self.kion = KionStandIn(certificates=self.certificates)
        self.endpoint_url = ""
        self.installation: LocalInstallation | None = None
        self.service: LocalRotationService | None = None

    def start(self) -> LoopbackWorld:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        os.environ.update(
            AWS_ENDPOINT_URL=self.endpoint_url,
            AWS_REGION=REGION,
            AWS_DEFAULT_REGION=REGION,
            POWERTOOLS_TRACE_DISABLED="true",
            **CREDENTIALS,
        )
        for name in ("AWS_PROFILE", "KION_API_KEY_CACHE_SECONDS", "SES_ACCEPT_TIMEOUT_SECONDS"):
            os.environ.pop(name, None)
        # The function's clients come from boto3's default session: count every call they make.
        boto3.setup_default_session()
        self.counter.attach(boto3.DEFAULT_SESSION)
        self.smtp.start()
        self.kion.start()
        session = boto3.Session()
        self.installation = provision_installation(
            self.kion,
            self.smtp,
            iam=session.client("iam"),
            secretsmanager=session.client("secretsmanager"),
        )
        with self.function_output():  # the function's log lines go nowhere while it loads
            from ses_smtp_rotator.functions.smtp_rotation.handler import lambda_handler
        self.service = LocalRotationService(in_process_function(lambda_handler), region=REGION)
        return self

    def stop(self) -> None:
        self.kion.stop()
        self.smtp.stop()
        self.moto.stop()
        server = getattr(self.moto, "_server", None)
        if server is not None:
            server.server_close()

    def __enter__(self) -> LoopbackWorld:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @contextlib.contextmanager
    def function_output(self) -> Any:
        """Keep the function's JSON logs and metrics (Lambda's stdout) off the table."""
        self._sink.seek(0)
        self._sink.truncate()
        with contextlib.redirect_stdout(self._sink):
            yield

    @property
    def secret_arn(self) -> str:
        assert self.installation is not None
        return self.installation.secret_id

    def rotate(self) -> Counts:
        """One whole rotation through the handler; what it took and what it called."""
        assert self.service is not None
        calls_before = self.counter.calls.copy()
        kion_before = len(self.kion.request_log)
        smtp_before = len(self.smtp.auth_attempts)
        started = time.perf_counter()
        with self.function_output():
            self.service.rotate(self.secret_arn)
        seconds = time.perf_counter() - started
        attempts = self.smtp.auth_attempts[smtp_before:]
        return Counts(
            seconds=seconds,
            aws_calls=self.counter.calls - calls_before,
            kion_requests=len(self.kion.request_log) - kion_before,
            smtp_logins=sum(attempt.outcome != "propagating" for attempt in attempts),
            smtp_propagation_refusals=sum(attempt.outcome == "propagating" for attempt in attempts),
        )

    def forget_kion_api_key(self) -> None:
        """A function instance whose Kion API key cache has expired (rotations are weeks apart)."""
        from ses_smtp_rotator.functions.smtp_rotation import handler

        handler._kion_api_keys.cache_clear()
