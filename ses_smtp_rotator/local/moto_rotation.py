"""Makes moto's ``RotateSecret`` behave like Secrets Manager's for one rotation function.

moto cannot run a rotation function without Docker and marks the new, empty version AWSCURRENT
anyway. With :class:`MotoRotateSecretHook` installed, ``RotateSecret`` on moto (in process, or on
a moto server in the same process) does what the real service does instead:

- it refuses to start while AWSPENDING sits on a version other than AWSCURRENT (a rotation still
  in progress), with the real service's ``InvalidRequestException``;
- it records the rotation configuration (``RotationLambdaARN``, rules) on the secret; without
  ``RotateImmediately`` it only checks the configuration by running ``testSecret`` once;
- it labels a new version AWSPENDING and answers with its ``VersionId`` at once; then, in the
  background, a :class:`LocalRotationService` invokes the function for each step in order and
  retries a failed rotation with the same token; on success it records ``LastRotatedDate``.

While a hook is installed, ``ListSecretVersionIds`` also reports when each version was created,
as the real service does (moto reports every version as created at the moment of the call), so a
version RotateSecret labelled but no step ever gave a value still shows its age.

:meth:`MotoRotateSecretHook.held_before` keeps rotations waiting before a step for as long as a
test needs a rotation in progress, instead of a delay that outlasts the test's next command.

Only rotations with the hooked function's ARN are handled. Another ARN goes to the hook installed
before this one (so the SMTP rotation and the Kion API key renewal can each have their own), and
is otherwise unknown, as in moto.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.secretsmanager.exceptions import (
    InvalidParameterException,
    InvalidRequestException,
    ResourceNotFoundException,
)
from moto.secretsmanager.models import secretsmanager_backends

from .rotation_service import (
    Invoke,
    LocalRotationService,
    RotationInProgressError,
    RotationStepError,
)

_DAY = 86400


class MotoRotateSecretHook:
    """Routes moto's RotateSecret for ``function_arn`` to an asynchronous local rotation."""

    def __init__(
        self,
        invoke: Invoke,
        function_arn: str,
        *,
        region: str = "us-east-1",
        account_id: str = DEFAULT_ACCOUNT_ID,
        retries: int = 1,
        on_step: Callable[[str, str], None] | None = None,
    ) -> None:
        self.function_arn = function_arn
        self.retries = retries
        self.service = LocalRotationService(
            invoke, region=region, account_id=account_id, on_step=self._before_step
        )
        self._on_step = on_step or (lambda step, token: None)
        self._gates: dict[str, threading.Event] = {}
        self.failures: list[RotationStepError] = []
        """Rotations that failed after their retries, oldest first."""
        self.completed: list[str] = []
        """Tokens of the rotations that finished, oldest first."""
        self._backend = secretsmanager_backends[account_id][region]
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._installed = False
        self._previous: Callable[..., str] | None = None
        self._dates_served = False

    def install(self) -> MotoRotateSecretHook:
        """Replace RotateSecret on this account and region's backend."""
        self._previous = self._backend.__dict__.get("rotate_secret")
        self._backend.rotate_secret = self.rotate_secret  # type: ignore[method-assign]
        if "list_secret_version_ids" not in self._backend.__dict__:
            self._backend.list_secret_version_ids = self._list_secret_version_ids  # type: ignore[method-assign]
            self._dates_served = True
        self._installed = True
        return self

    def uninstall(self) -> None:
        if self._installed:
            if self._previous is not None:
                self._backend.rotate_secret = self._previous  # type: ignore[method-assign]
            else:
                del self._backend.rotate_secret
            if self._dates_served:
                del self._backend.list_secret_version_ids
                self._dates_served = False
            self._installed = False

    def _list_secret_version_ids(self, secret_id: str) -> str:
        """moto's ListSecretVersionIds with each version's own creation date."""
        listing = json.loads(type(self._backend).list_secret_version_ids(self._backend, secret_id))
        versions = self._backend.describe_secret(secret_id).versions
        for version in listing["Versions"]:
            created = versions[version["VersionId"]].get("createdate")
            if created is not None:
                version["CreatedDate"] = created
        return json.dumps(listing)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait until no rotation runs; False when ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    @contextmanager
    def held_before(self, step: str) -> Iterator[threading.Event]:
        """Rotations that reach ``step`` while the block runs wait there (AWSPENDING labelled,
        the function idle) until the yielded event is set, at the latest when the block ends."""
        gate = threading.Event()
        self._gates[step] = gate
        try:
            yield gate
        finally:
            gate.set()
            if self._gates.get(step) is gate:
                del self._gates[step]

    def _before_step(self, step: str, token: str) -> None:
        gate = self._gates.get(step)
        if gate is not None:
            gate.wait()
        self._on_step(step, token)

    @property
    def busy(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def rotate_secret(
        self,
        secret_id: str,
        client_request_token: str | None = None,
        rotation_lambda_arn: str | None = None,
        rotation_rules: dict[str, Any] | None = None,
        rotate_immediately: bool = True,
    ) -> str:
        """moto's SecretsManagerBackend.rotate_secret, with the real service's behaviour."""
        secret = self._backend.describe_secret(secret_id)  # raises SecretNotFoundException
        if secret.is_deleted():
            raise InvalidRequestException(
                "You can't perform this operation on the secret because it was marked for deletion."
            )
        function_arn = rotation_lambda_arn or secret.rotation_lambda_arn
        if not function_arn:
            raise InvalidRequestException(
                "No Lambda rotation function ARN is associated with this secret."
            )
        if function_arn != self.function_arn and self._previous is not None:
            return self._previous(
                secret_id,
                client_request_token,
                rotation_lambda_arn,
                rotation_rules,
                rotate_immediately,
            )
        if function_arn != self.function_arn:
            raise ResourceNotFoundException(f"Resource not found for ARN '{function_arn}'.")
        with self._lock:
            self._configure(secret, function_arn, rotation_rules)
            if not rotate_immediately:
                self._check_configuration(secret.arn)
                return secret.to_short_dict(include_version_id=False)
            running = any(
                thread.is_alive() and thread.name.startswith(f"rotation {secret.arn} ")
                for thread in self._threads
            )
            try:
                if running:
                    raise RotationInProgressError(secret.arn)
                token = self.service.start(secret.arn, client_request_token)
            except RotationInProgressError:
                raise InvalidRequestException(
                    "A previous rotation isn't complete. That rotation will be reattempted."
                ) from None
            thread = threading.Thread(
                target=self._rotate,
                args=(secret.arn, token),
                name=f"rotation {secret.arn} {token}",
                daemon=True,
            )
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()
        return secret.to_short_dict(version_id=token)

    def _configure(
        self, secret: Any, function_arn: str, rotation_rules: dict[str, Any] | None
    ) -> None:
        secret.rotation_requested = True
        secret.rotation_enabled = True
        secret.rotation_lambda_arn = function_arn
        days = (rotation_rules or {}).get("AutomaticallyAfterDays")
        if days is not None:
            if not 1 <= int(days) <= 1000:
                raise InvalidParameterException(
                    "RotationRules.AutomaticallyAfterDays must be within 1-1000."
                )
            secret.auto_rotate_after_days = int(days)

    def _check_configuration(self, secret_arn: str) -> None:
        """Attaching rotation without rotating: the real service runs testSecret once."""
        try:
            self.service.check_configuration(secret_arn)
        except RotationStepError as failure:
            raise InvalidRequestException(
                f"The rotation function failed its configuration check (testSecret): "
                f"{failure.error}"
            ) from None

    def _rotate(self, secret_arn: str, token: str) -> None:
        try:
            self.service.rotate(secret_arn, token, retries=self.retries)
        except RotationStepError as failure:
            self.failures.append(failure)
            return
        secret = self._backend.describe_secret(secret_arn)
        if secret.auto_rotate_after_days:
            secret.next_rotation_date = int(time.time()) + secret.auto_rotate_after_days * _DAY
        self.completed.append(token)
