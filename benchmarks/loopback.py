"""A Kion installation on loopback servers for the benchmarks: moto's server for AWS, the SES SMTP
and Kion stand-ins, and the rotation function run in this process through ``lambda_handler``
(the deployed entry point), invoked step by step as Secrets Manager invokes it.

The function's environment is its production one (the Kion API key cached for 60 s, SES waited for
up to 120 s); only X-Ray tracing is off, as there is no daemon here.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.local.installation import LocalInstallation, provision_installation
from ses_smtp_rotator.local.kion_server import KionStandIn
from ses_smtp_rotator.local.rotation_service import LocalRotationService, in_process_function
from ses_smtp_rotator.local.smtp_server import SesSmtpServer
from ses_smtp_rotator.local.tls import LoopbackCertificates

from .calls import Call, CallLedger

REGION = "us-east-1"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_SESSION_TOKEN": "bench",
}


@dataclass
class Counts:
    """What one rotation (or renewal, or check) cost, and each call it made."""

    seconds: float
    calls: list[Call]
    kion_requests: int
    smtp_logins: int
    smtp_propagation_refusals: int

    @property
    def aws_calls(self) -> Counter[str]:
        return Counter(call.name for call in self.calls if call.system == "AWS")

    @property
    def aws_total(self) -> int:
        return sum(self.aws_calls.values())


class LoopbackWorld:
    """Starts the servers, provisions one installation, and rotates it through the handler."""

    def __init__(self) -> None:
        self.ledger = CallLedger()
        self._recording: Any = None
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
        self.smtp.start()
        self.kion.start()
        self.ledger.kion_ports.add(int(self.kion.url.rsplit(":", 1)[-1].split("/")[0]))
        self._recording = self.ledger.recording(boto3.DEFAULT_SESSION)
        self._recording.__enter__()
        session = boto3.Session()
        self.installation = provision_installation(
            self.kion,
            self.smtp,
            iam=session.client("iam"),
            secretsmanager=session.client("secretsmanager"),
        )
        with self.function_output():  # the function's log lines go nowhere while it loads
            from ses_smtp_rotator.functions.kion_key_renewal.handler import (
                lambda_handler as renewal_handler,
            )
            from ses_smtp_rotator.functions.smtp_rotation.handler import lambda_handler
        self.service = LocalRotationService(
            in_process_function(lambda_handler), region=REGION, on_step=self._on_step
        )
        self.renewal_service = LocalRotationService(
            in_process_function(renewal_handler), region=REGION, on_step=self._on_step
        )
        self._aws = session
        return self

    def _on_step(self, step: str, token: str) -> None:
        self.ledger.step = step

    def stop(self) -> None:
        if self._recording is not None:
            self._recording.__exit__(None, None, None)
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
        """One whole rotation through the handler; what it took and what it called. The key it
        replaced then passes its rollback window, as the daily watch would delete it a week
        later (that deletion is not counted): the next rotation starts from the steady state."""
        assert self.service is not None
        service = self.service
        counts = self._measured(lambda: service.rotate(self.secret_arn))
        self.pass_rollback_window()
        return counts

    def renew_kion_key(self) -> Counts:
        """One renewal of the installation's Kion API key through its function (the key first
        stored as ``set-kion-key`` stores it: with its id in Kion and its installation)."""
        assert self.installation is not None
        key_id, key = self.kion.create_api_key()
        self._aws.client("secretsmanager").put_secret_value(
            SecretId=self.installation.kion_api_key_secret_id,
            SecretString=json.dumps(
                {"api_key": key, "api_key_id": key_id, "installation_secret_id": self.secret_arn}
            ),
        )
        secret_id = self.installation.kion_api_key_secret_id
        return self._measured(lambda: self.renewal_service.rotate(secret_id))

    def watch_check(self) -> Counts:
        """One installation's health check, as the daily watch's message (and ``status``) makes
        it, with the watch's defaults."""
        from ses_smtp_rotator.functions.watch.health import HealthCheck, HealthLimits

        check = HealthCheck(
            HealthLimits(timedelta(seconds=300), timedelta(days=35), timedelta(days=5)),
            RotationConfig.from_environment(),
        )
        self.ledger.step = "check"
        return self._measured(lambda: check.check(self.secret_arn))

    def _measured(self, run: Callable[[], object]) -> Counts:
        mark = self.ledger.mark()
        kion_before = len(self.kion.request_log)
        smtp_before = len(self.smtp.auth_attempts)
        started = time.perf_counter()
        with self.function_output():
            run()
        seconds = time.perf_counter() - started
        self.ledger.step = "-"
        attempts = self.smtp.auth_attempts[smtp_before:]
        return Counts(
            seconds=seconds,
            calls=self.ledger.since(mark),
            kion_requests=len(self.kion.request_log) - kion_before,
            smtp_logins=sum(attempt.outcome != "propagating" for attempt in attempts),
            smtp_propagation_refusals=sum(attempt.outcome == "propagating" for attempt in attempts),
        )

    @property
    def iam_user_name(self) -> str:
        assert self.installation is not None
        return self.installation.iam_user_name

    def quiet_iam(self) -> Any:
        """An IAM client whose calls are not counted."""
        return boto3.Session().client("iam")

    def kion_credential_accepted(self) -> bool:
        """Whether SES accepts, at one more login, the credential Kion is configured with."""
        username = self.kion.app_config["smtp_username"]
        password = self.kion.app_config["smtp_password"]
        return self.smtp.check_credential(username, password) == "accepted" and _login(
            self.smtp, username, password
        )

    def pass_rollback_window(self) -> None:
        """Delete the retired keys as the daily watch does once their window has passed."""
        from ses_smtp_rotator.functions.watch.retired_key_deletion import delete_retired_keys

        config = RotationConfig.from_environment()
        later = datetime.now(UTC) + timedelta(days=config.previous_key_grace_days + 1)
        quiet = boto3.Session()
        with self.function_output():
            delete_retired_keys(
                self.secret_arn,
                config,
                now=later,
                secretsmanager=quiet.client("secretsmanager"),
                iam=quiet.client("iam"),
            )

    def forget_kion_api_key(self) -> None:
        """A function instance whose Kion API key cache has expired (rotations are weeks apart):
        the reader and the Powertools provider behind it (one per client) forget the key."""
        from ses_smtp_rotator.functions.services import secrets_store
        from ses_smtp_rotator.functions.smtp_rotation import handler

        handler._kion_api_keys.cache_clear()
        for provider in list(secrets_store._PROVIDERS.values()):
            provider.clear_cache()


def _login(smtp: SesSmtpServer, username: str, password: str) -> bool:
    from ses_smtp_rotator.functions.services.ses_smtp import SmtpEndpoint, try_login

    return try_login(SmtpEndpoint(smtp.host, smtp.port, False, smtp.ca_pem), username, password)
