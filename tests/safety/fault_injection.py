"""Fault injection at every external call the rotation function makes.

The rotation talks to four systems, and every call it makes passes one of these seams, none of
which is the rotation's own code:

- AWS (IAM, Secrets Manager, including the Kion API key read through Powertools' SecretsProvider):
  botocore's ``before-call`` and ``after-call`` events on the function's cached clients;
- Kion: ``urllib3.PoolManager.urlopen`` (one logical request, retries included);
- SES SMTP: ``smtplib.SMTP.connect`` (TCP and greeting), ``smtplib.SMTP.auth`` (AUTH) and
  ``smtplib.SMTP.sendmail`` (the send-path check's message).

A :class:`FaultInjector` names each call ``<system>.<operation>`` and counts them per step
invocation, so a call site reads ``createSecret:iam.CreateAccessKey#1``. It records the sites of a
clean rotation, and it fires one planned :class:`Fault` at one site: an error before the call takes
effect, a reply lost after it took effect, or the function killed (a :class:`LambdaKilled`
``BaseException``, which no ``except Exception`` clean-up catches) before or after the call.
"""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import urllib3
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from urllib3.exceptions import MaxRetryError, ProtocolError

from ses_smtp_rotator.local.kion_server import KionStandIn
from ses_smtp_rotator.local.smtp_server import SesSmtpServer, SilentSmtpServer
from smtp_rotation import aws

AWS_SERVICES = ("iam", "secretsmanager")

# Fault kinds. "Before" kinds fail the call before it takes effect; "after" kinds let it take
# effect and then lose the reply or kill the function.
KILLED_BEFORE = "killed-before"
KILLED_AFTER = "killed-after"
LOST = "reply-lost"
AWS_ERRORS = ("access-denied", "unreachable", "http-500")
KION_ERRORS = ("refused", "http-500")
SMTP_CONNECT_ERRORS = ("refused", "silent")
SMTP_AUTH_ERRORS = ("smtp-535",)
SMTP_SEND_ERRORS = ("smtp-554", "smtp-454")
AFTER_KINDS = frozenset({LOST, KILLED_AFTER})


def fault_kinds(call: str) -> tuple[str, ...]:
    """Every fault kind that applies to a call named ``call`` (``iam.CreateAccessKey`` ...)."""
    system = call.split(".", 1)[0]
    errors = {
        "iam": AWS_ERRORS,
        "secretsmanager": AWS_ERRORS,
        "kion": KION_ERRORS,
        "smtp": {"smtp.auth": SMTP_AUTH_ERRORS, "smtp.send": SMTP_SEND_ERRORS}.get(
            call, SMTP_CONNECT_ERRORS
        ),
    }[system]
    return (*errors, LOST, KILLED_BEFORE, KILLED_AFTER)


class LambdaKilled(BaseException):
    """The function stopped mid-call, as at a Lambda timeout: no ``except Exception`` runs."""


@dataclass(frozen=True, order=True)
class CallSite:
    """The ``occurrence``-th call named ``call`` within one invocation of ``step``."""

    step: str
    call: str
    occurrence: int

    def __str__(self) -> str:
        return f"{self.step}:{self.call}#{self.occurrence}"


@dataclass(frozen=True)
class Fault:
    site: CallSite
    kind: str

    def __str__(self) -> str:
        return f"{self.site}:{self.kind}"


@dataclass
class FaultInjector:
    """Counts, records and fails the rotation's external calls. Install it with :meth:`installed`.

    ``step`` is the step being invoked; calls made outside a step (the tests' own observations)
    are neither counted nor failed. ``denied`` holds AWS calls refused with AccessDenied every
    time (see :meth:`deny`). ``silent`` is the server a "silent" SMTP connect goes to instead.
    ``on_delete`` sees the id of every access key the function is about to delete, before the
    call takes effect; ``on_key_created`` the id of every key it created in a step.
    """

    kion: KionStandIn
    smtp: SesSmtpServer
    silent: SilentSmtpServer
    plan: Fault | None = None
    fired: list[Fault] = field(default_factory=list)
    recorded: list[CallSite] = field(default_factory=list)
    denied: dict[str, str] = field(default_factory=dict)
    on_delete: Callable[[str], None] = lambda access_key_id: None
    on_key_created: Callable[[str], None] = lambda access_key_id: None
    on_site: Callable[[CallSite], None] = lambda site: None
    step: str | None = None
    _counts: dict[str, int] = field(default_factory=dict)
    _after: dict[int, str] = field(default_factory=dict)
    _closed_port: int = 0

    # -- steps ------------------------------------------------------------------------------

    @contextmanager
    def invoking(self, step: str) -> Iterator[None]:
        """Mark the calls made inside the block as those of one invocation of ``step``."""
        self.step, self._counts = step, {}
        try:
            yield
        finally:
            self.step = None

    def deny(self, call: str, resource: str = "") -> None:
        """Refuse ``call`` with AccessDenied from now on (only on ``resource``, when given)."""
        self.denied[call] = resource

    def _enter(self, call: str, request: str = "") -> str | None:
        """Count a call; return the fault kind to apply to it, if any."""
        if self.step is None:
            return None
        self._counts[call] = self._counts.get(call, 0) + 1
        site = CallSite(self.step, call, self._counts[call])
        self.recorded.append(site)
        self.on_site(site)
        if call in self.denied and self.denied[call] in request:
            return "access-denied"
        if self.plan is not None and self.plan.site == site and not self.fired:
            self.fired.append(self.plan)
            return self.plan.kind
        return None

    # -- installation -----------------------------------------------------------------------

    @contextmanager
    def installed(self) -> Iterator[FaultInjector]:
        """Hook every seam for the duration of the block, and unhook them after."""
        originals = {
            (urllib3.PoolManager, "urlopen"): urllib3.PoolManager.urlopen,
            (smtplib.SMTP, "connect"): smtplib.SMTP.connect,
            (smtplib.SMTP, "auth"): smtplib.SMTP.auth,
            (smtplib.SMTP, "sendmail"): smtplib.SMTP.sendmail,
        }
        self._closed_port = closed_port()
        clients = [aws.client(service) for service in AWS_SERVICES]
        for client in clients:
            client.meta.events.register("before-call", self._before_aws, unique_id="faults-b")
            client.meta.events.register("after-call", self._after_aws, unique_id="faults-a")
        urllib3.PoolManager.urlopen = self._wrap_kion(originals[urllib3.PoolManager, "urlopen"])
        smtplib.SMTP.connect = self._wrap_connect(originals[smtplib.SMTP, "connect"])
        smtplib.SMTP.auth = self._wrap_auth(originals[smtplib.SMTP, "auth"])
        smtplib.SMTP.sendmail = self._wrap_send(originals[smtplib.SMTP, "sendmail"])
        try:
            yield self
        finally:
            for (owner, name), original in originals.items():
                setattr(owner, name, original)
            for client in clients:
                client.meta.events.unregister("before-call", unique_id="faults-b")
                client.meta.events.unregister("after-call", unique_id="faults-a")

    # -- AWS --------------------------------------------------------------------------------

    def _before_aws(self, model: Any, params: dict[str, Any], context: dict, **_: Any) -> None:
        call = f"{_service(model)}.{model.name}"
        if call == "iam.DeleteAccessKey" and self.step is not None:
            self.on_delete(str(params.get("body", {}).get("AccessKeyId", "")))
        kind = self._enter(call, str(params.get("body", "")))
        if kind in AFTER_KINDS:
            self._after[id(context)] = kind
        elif kind is not None:
            raise _aws_error(kind, call)
        # returning None lets the call go ahead (a value would replace its response)

    def _after_aws(self, model: Any, parsed: dict[str, Any], context: dict, **_: Any) -> None:
        created = model.name == "CreateAccessKey" and parsed.get("AccessKey", {}).get("AccessKeyId")
        if created and self.step is not None:
            self.on_key_created(created)
        kind = self._after.pop(id(context), None)
        if kind == LOST:
            raise ReadTimeoutError(endpoint_url="https://aws.invalid (reply lost, injected)")
        if kind == KILLED_AFTER:
            raise LambdaKilled("killed after the AWS call took effect")

    # -- Kion -------------------------------------------------------------------------------

    def _wrap_kion(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def urlopen(manager: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if not url.startswith(self.kion.url):
                return original(manager, method, url, *args, **kwargs)
            path = urlsplit(url).path.removeprefix("/api/v3/")
            kind = self._enter(f"kion.{method}-{path}")
            if kind == KILLED_BEFORE:
                raise LambdaKilled(f"killed before Kion {method} {path}")
            if kind == "refused":
                url = url.replace(self.kion.url, f"https://127.0.0.1:{self._closed_port}", 1)
            if kind == "http-500":
                self.kion.fail_requests(500, count=None)
            try:
                response = original(manager, method, url, *args, **kwargs)
            finally:
                if kind == "http-500":
                    self.kion.clear_faults()
            if kind == LOST:
                raise MaxRetryError(None, url, ProtocolError("Connection aborted (injected)"))
            if kind == KILLED_AFTER:
                raise LambdaKilled(f"killed after Kion {method} {path}")
            return response

        return urlopen

    # -- SMTP -------------------------------------------------------------------------------

    def _wrap_connect(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def connect(session: smtplib.SMTP, host: str = "localhost", port: int = 0, *args: Any):
            kind = self._enter("smtp.connect")
            if kind == KILLED_BEFORE:
                raise LambdaKilled("killed before the SMTP connect")
            if kind == "refused":
                port = self._closed_port
            if kind == "silent":
                port = self.silent.port
            reply = original(session, host, port, *args)
            return _after_smtp(session, kind, "connect", reply)

        return connect

    def _wrap_auth(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def auth(session: smtplib.SMTP, mechanism: str, *args: Any, **kwargs: Any) -> Any:
            kind = self._enter("smtp.auth")
            if kind == KILLED_BEFORE:
                raise LambdaKilled("killed before SMTP AUTH")
            refusing = self.smtp.refuse_all
            self.smtp.refuse_all = refusing or kind == "smtp-535"
            try:
                reply = original(session, mechanism, *args, **kwargs)
            finally:
                self.smtp.refuse_all = refusing
            return _after_smtp(session, kind, "AUTH", reply)

        return auth

    def _wrap_send(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def sendmail(session: smtplib.SMTP, *args: Any, **kwargs: Any) -> Any:
            kind = self._enter("smtp.send")
            if kind == KILLED_BEFORE:
                raise LambdaKilled("killed before the SMTP message")
            paused, throttled = self.smtp.sending_paused, self.smtp.throttle_next
            self.smtp.sending_paused = paused or kind == "smtp-554"
            self.smtp.throttle_next = 99 if kind == "smtp-454" else throttled
            try:
                reply = original(session, *args, **kwargs)
            finally:
                self.smtp.sending_paused, self.smtp.throttle_next = paused, throttled
            return _after_smtp(session, kind, "DATA", reply)

        return sendmail


def _after_smtp(session: smtplib.SMTP, kind: str | None, what: str, reply: Any) -> Any:
    if kind == LOST:
        session.close()
        raise smtplib.SMTPServerDisconnected(f"Connection lost after {what} (injected)")
    if kind == KILLED_AFTER:
        raise LambdaKilled(f"killed after SMTP {what}")
    return reply


def _service(model: Any) -> str:
    return str(model.service_model.service_name)


def _aws_error(kind: str, call: str) -> Exception:
    service, operation = call.split(".", 1)
    if kind == "unreachable":
        return EndpointConnectionError(endpoint_url=f"https://{service}.invalid (injected)")
    if kind == "access-denied":  # each service's own code for it
        code = "AccessDenied" if service == "iam" else "AccessDeniedException"
        status = 403
    else:
        code, status = "InternalFailure", 500
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} (injected)"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
