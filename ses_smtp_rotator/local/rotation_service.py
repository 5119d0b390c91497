"""A stand-in for Secrets Manager's rotation service, on top of moto.

moto cannot run a rotation function without Docker, and its RotateSecret marks the new, empty
version AWSCURRENT anyway. This does what the real service does instead: it labels a new version
id AWSPENDING (with no value yet), then invokes the function once per step, in order, with the
same event fields, and retries a failed rotation with the same token. Labels move as the real
service moves them (``secret_labels``): finishSecret's move of AWSCURRENT leaves AWSPENDING on the
new current version, as Secrets Manager may.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.secretsmanager.models import secretsmanager_backends

from .secret_labels import install_label_moves

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
Invoke = Callable[[dict[str, Any]], Any]


class RotationInProgressError(Exception):
    """AWSPENDING sits on a version other than AWSCURRENT: the real service refuses to start."""


class RotationStepError(Exception):
    """A step of the rotation failed; ``error`` is what the function raised."""

    def __init__(self, step: str, token: str, error: BaseException) -> None:
        self.step = step
        self.token = token
        self.error = error
        super().__init__(f"{step} failed: {error}")


@dataclass
class LambdaContextStub:
    """The parts of the Lambda context object the function reads; the time left runs on
    ``clock`` (a test's virtual clock, or the machine's) from the moment the stub is made."""

    function_name: str = "ses-smtp-rotator-local"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = (
        f"arn:aws:lambda:us-east-1:{DEFAULT_ACCOUNT_ID}:function:ses-smtp-rotator-local"
    )
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timeout_seconds: float = 900.0
    clock: Callable[[], float] = time.monotonic
    _started: float = field(init=False)

    def __post_init__(self) -> None:
        self._started = self.clock()

    def get_remaining_time_in_millis(self) -> int:
        return int(max(0.0, self.timeout_seconds - (self.clock() - self._started)) * 1000)


def in_process_function(
    handler: Callable[[dict[str, Any], Any], Any],
    *,
    timeout_seconds: float = 900.0,
    clock: Callable[[], float] = time.monotonic,
) -> Invoke:
    """Invoke ``handler`` (the deployed lambda_handler) directly, with a fresh context each time
    (its time left counted on ``clock`` from ``timeout_seconds``)."""
    return lambda event: handler(
        event, LambdaContextStub(timeout_seconds=timeout_seconds, clock=clock)
    )


class LocalRotationService:
    """Starts rotations and invokes the rotation function the way Secrets Manager does."""

    def __init__(
        self,
        invoke: Invoke,
        *,
        region: str = "us-east-1",
        account_id: str = DEFAULT_ACCOUNT_ID,
        on_step: Callable[[str, str], None] | None = None,
    ) -> None:
        install_label_moves()
        self._invoke = invoke
        self._backend = secretsmanager_backends[account_id][region]
        self._on_step = on_step or (lambda step, token: None)
        self.last_rotation_token: str | None = None
        """The RotationToken of the last step invoked."""

    def start(self, secret_id: str, token: str | None = None) -> str:
        """Label a new version AWSPENDING, as RotateSecret does before the first step.

        With the token of a version that exists (the rotation still pending, or one whose
        finishSecret already made it AWSCURRENT), this is a retry of that rotation and changes
        nothing.
        """
        secret = self._backend.describe_secret(secret_id)
        if token in secret.versions:
            return token
        pending = [vid for vid, v in secret.versions.items() if "AWSPENDING" in v["version_stages"]]
        for version_id in pending:
            stages = secret.versions[version_id]["version_stages"]
            if "AWSCURRENT" not in stages:
                raise RotationInProgressError(
                    f"A previous rotation of {secret_id} isn't complete (version {version_id} is "
                    "AWSPENDING). It will be retried; or remove its AWSPENDING label to abandon it."
                )
        token = token or str(uuid.uuid4())
        secret.remove_version_stages_from_old_versions(["AWSPENDING"])
        secret.versions[token] = {
            "createdate": int(time.time()),
            "version_id": token,
            "version_stages": ["AWSPENDING"],
        }
        return token

    def check_configuration(self, secret_id: str) -> None:
        """What attaching rotation without rotating does: testSecret on an AWSPENDING copy of
        AWSCURRENT, after which the copy loses its label again."""
        secret = self._backend.describe_secret(secret_id)
        current = next(v for v in secret.versions.values() if "AWSCURRENT" in v["version_stages"])
        token = str(uuid.uuid4())
        secret.versions[token] = {
            "createdate": int(time.time()),
            "version_id": token,
            "version_stages": ["AWSPENDING"],
            "secret_string": current["secret_string"],
        }
        try:
            self.invoke_step(secret_id, token, "testSecret")
        finally:
            secret.versions[token]["version_stages"] = []

    def invoke_step(self, secret_id: str, token: str, step: str) -> None:
        self._on_step(step, token)
        # The service passes a token the function hands back on PutSecretValue.
        self.last_rotation_token = str(uuid.uuid4())
        try:
            self._invoke(
                {
                    "Step": step,
                    "SecretId": secret_id,
                    "ClientRequestToken": token,
                    "RotationToken": self.last_rotation_token,
                }
            )
        except Exception as error:
            raise RotationStepError(step, token, error) from error

    def rotate(self, secret_id: str, token: str | None = None, *, retries: int = 0) -> str:
        """Run a whole rotation; on a failed step, run it again from the start with the same
        token up to ``retries`` more times (as Secrets Manager does), then raise the failure."""
        token = self.start(secret_id, token)
        for attempt in range(retries + 1):
            try:
                for step in STEPS:
                    self.invoke_step(secret_id, token, step)
                break
            except RotationStepError:
                if attempt == retries:
                    raise
        self._backend.describe_secret(secret_id).last_rotation_date = int(time.time())
        return token
