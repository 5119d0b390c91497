"""Fault injection at every external call the rotation function makes.

The rotation talks to four systems, and every call it makes passes one of these seams, none of
which is the rotation's own code:

- AWS (IAM, Secrets Manager, including the Kion API key read through Powertools' SecretsProvider,
  and STS): botocore's ``before-call`` and ``after-call`` events on the function's cached clients
  and on the IAM clients it makes for an installation in another account (hooked as
  ``account_access.account_clients`` hands them out; their AssumeRole is the STS client's);
- Kion: ``urllib3.PoolManager.urlopen`` (one logical request, retries included);
- SES SMTP: ``smtplib.SMTP.connect`` (TCP and greeting), ``smtplib.SMTP.auth`` (AUTH) and
  ``smtplib.SMTP.sendmail`` (the send-path check's message).

A :class:`FaultInjector` names each call ``<system>.<operation>`` and counts them per step
invocation, so a call site reads ``createSecret:iam.CreateAccessKey#1``. It records the sites of a
clean rotation, and it fires one planned :class:`Fault` at one site: an error before the call takes
effect, a reply lost after it took effect, or the function killed (a :class:`LambdaKilled`
``BaseException``, which no ``except Exception`` clean-up catches) before or after the call. An
"after" fault applies whatever the call answered (a refused AUTH included), so it always changes
what the function sees. A :class:`FollowUp` plans a second fault, counted in calls after the first.

Every call leaves one line in :attr:`FaultInjector.trace`: its site and what the function saw
(``ok``, the service's error code, or the exception it got), marked when a fault let the call take
effect first. Two runs with the same trace did the same thing; a fault that leaves the trace of the
run without it unchanged had no effect.
"""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import urllib3
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from urllib3.exceptions import MaxRetryError, ProtocolError

from ses_smtp_rotator.functions.services import account_access
from ses_smtp_rotator.functions.services import aws_clients as aws
from ses_smtp_rotator.local.kion_server import KionStandIn
from ses_smtp_rotator.local.smtp_server import SesSmtpServer, SilentSmtpServer

AWS_SERVICES = ("iam", "secretsmanager", "sts")

# Fault kinds. "Before" kinds fail the call before it takes effect; "after" kinds let it take
# effect and then lose the reply or kill the function.
KILLED_BEFORE = "killed-before"
KILLED_AFTER = "killed-after"
LOST = "reply-lost"
AWS_ERRORS = ("access-denied", "unreachable", "http-500")
THROTTLED = "throttled"
# AssumeRole answers credentials that expire within botocore's mandatory refresh window: the
# function's next request in the other account must assume the role again.
EXPIRES_SOON = "expires-soon"
STS_FAULTS = (*AWS_ERRORS, THROTTLED, EXPIRES_SOON)
KION_ERRORS = ("refused", "http-500")
SMTP_CONNECT_ERRORS = ("refused", "silent")
SMTP_AUTH_ERRORS = ("smtp-535",)
SMTP_SEND_ERRORS = ("smtp-554", "smtp-454")
AFTER_KINDS = frozenset({LOST, KILLED_AFTER})
TOOK_EFFECT = " (after the call took effect)"  # marks a trace line whose call went through


def behaviour(trace: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The trace as the function saw it: the calls it made and their outcomes, nothing more."""
    return tuple(line.removesuffix(TOOK_EFFECT) for line in trace)


def fault_kinds(call: str, seen: str | None = None) -> tuple[str, ...]:
    """Every fault kind that changes a call named ``call`` (``iam.CreateAccessKey`` ...) which,
    without a fault, answered ``seen``. (A 535 where SES refuses anyway would change nothing.)"""
    system = call.split(".", 1)[0]
    errors = {
        "iam": AWS_ERRORS,
        "secretsmanager": AWS_ERRORS,
        "sts": STS_FAULTS,
        "kion": KION_ERRORS,
        "smtp": {"smtp.auth": SMTP_AUTH_ERRORS, "smtp.send": SMTP_SEND_ERRORS}.get(
            call, SMTP_CONNECT_ERRORS
        ),
    }[system]
    if seen == "SMTPAuthenticationError":
        errors = ()
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


@dataclass(frozen=True)
class FollowUp:
    """A second fault, at the ``calls_after``-th external call after the first one fired."""

    calls_after: int
    fault: Fault

    def __str__(self) -> str:
        return f"{self.fault}@+{self.calls_after}"


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
    follow_up: FollowUp | None = None
    fired: list[Fault] = field(default_factory=list)
    recorded: list[CallSite] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)  # what each recorded call answered
    denied: dict[str, str] = field(default_factory=dict)
    on_delete: Callable[[str], None] = lambda access_key_id: None
    on_key_created: Callable[[str], None] = lambda access_key_id: None
    on_site: Callable[[CallSite], None] = lambda site: None
    step: str | None = None
    _counts: dict[str, int] = field(default_factory=dict)
    _after: dict[int, tuple[CallSite, str | None]] = field(default_factory=dict)
    _calls_since_first: int = 0
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

    def reset(self) -> None:
        """Forget the plan, the faults fired and every call recorded (denials stay)."""
        self.plan, self.follow_up = None, None
        self.fired.clear()
        self.recorded.clear()
        self.trace.clear()
        self.seen.clear()
        self._calls_since_first = 0

    def calls_after_first_fault(self) -> list[tuple[CallSite, str]]:
        """The sites called since the first fault fired, in order, each with what it answered
        (for planning a follow-up)."""
        after = len(self.recorded) - self._calls_since_first
        return list(zip(self.recorded, self.seen, strict=True))[after:] if self.fired else []

    def _enter(self, call: str, request: str = "") -> tuple[CallSite | None, str | None]:
        """Count a call; return its site (None outside a step) and the fault kind to apply."""
        if self.step is None:
            return None, None
        self._counts[call] = self._counts.get(call, 0) + 1
        site = CallSite(self.step, call, self._counts[call])
        self.recorded.append(site)
        self.seen.append("")
        if self.fired:
            self._calls_since_first += 1
        self.on_site(site)
        if call in self.denied and self.denied[call] in request:
            return site, "access-denied"
        if self.plan is not None and self.plan.site == site and not self.fired:
            self.fired.append(self.plan)
            return site, self.plan.kind
        follow_up = self.follow_up
        if (
            follow_up is not None
            and len(self.fired) == 1
            and self._calls_since_first == follow_up.calls_after
        ):
            if follow_up.fault.site.call != call:
                raise AssertionError(f"the follow-up {follow_up} met {site}: rerun is not exact")
            self.fired.append(follow_up.fault)
            return site, follow_up.fault.kind
        return site, None

    def _saw(self, site: CallSite | None, outcome: str, kind: str | None = None) -> None:
        """Note what the function saw from one call (and whether the call took effect first)."""
        if site is not None:
            self.seen[-1] = outcome
            took_effect = TOOK_EFFECT if kind in AFTER_KINDS else ""
            self.trace.append(f"{site}={outcome}{took_effect}")

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
        clients = [aws.client(service) for service in AWS_SERVICES] + [
            aws.single_attempt_client("iam")
        ]
        for client in clients:
            self._hook(client)
        account_clients = account_access.account_clients
        account_access.account_clients = self._wrap_account_clients(account_clients)
        urllib3.PoolManager.urlopen = self._wrap_kion(originals[urllib3.PoolManager, "urlopen"])
        smtplib.SMTP.connect = self._wrap_connect(originals[smtplib.SMTP, "connect"])
        smtplib.SMTP.auth = self._wrap_auth(originals[smtplib.SMTP, "auth"])
        smtplib.SMTP.sendmail = self._wrap_send(originals[smtplib.SMTP, "sendmail"])
        try:
            yield self
        finally:
            for (owner, name), original in originals.items():
                setattr(owner, name, original)
            account_access.account_clients = account_clients
            for client in clients:
                client.meta.events.unregister("before-call", unique_id="faults-b")
                client.meta.events.unregister("after-call", unique_id="faults-a")

    # -- AWS --------------------------------------------------------------------------------

    def _hook(self, client: Any) -> None:
        client.meta.events.register("before-call", self._before_aws, unique_id="faults-b")
        client.meta.events.register("after-call", self._after_aws, unique_id="faults-a")

    def _wrap_account_clients(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def account_clients(*args: Any, **kwargs: Any) -> Any:
            made = original(*args, **kwargs)
            self._hook(made.iam)
            self._hook(made.iam_once)
            return made

        return account_clients

    def _before_aws(self, model: Any, params: dict[str, Any], context: dict, **_: Any) -> None:
        call = f"{_service(model)}.{model.name}"
        site, kind = self._enter(call, str(params.get("body", "")))
        if kind is not None and kind not in (*AFTER_KINDS, EXPIRES_SOON):
            error = _aws_error(kind, call)
            self._saw(site, _aws_outcome(error))
            raise error
        if call == "iam.DeleteAccessKey" and site is not None:
            self.on_delete(str(params.get("body", {}).get("AccessKeyId", "")))
        self._after[id(context)] = (site, kind)
        # returning None lets the call go ahead (a value would replace its response)

    def _after_aws(self, model: Any, parsed: dict[str, Any], context: dict, **_: Any) -> None:
        site, kind = self._after.pop(id(context), (None, None))
        created = model.name == "CreateAccessKey" and parsed.get("AccessKey", {}).get("AccessKeyId")
        if created and site is not None:
            self.on_key_created(created)
        if kind == LOST:
            self._saw(site, "ReadTimeoutError", kind)
            raise ReadTimeoutError(endpoint_url="https://aws.invalid (reply lost, injected)")
        if kind == KILLED_AFTER:
            self._saw(site, "LambdaKilled", kind)
            raise LambdaKilled("killed after the AWS call took effect")
        if kind == EXPIRES_SOON and "Credentials" in parsed:
            parsed["Credentials"]["Expiration"] = datetime.now(UTC) + timedelta(minutes=5)
        self._saw(site, parsed.get("Error", {}).get("Code") or "ok")

    # -- Kion -------------------------------------------------------------------------------

    def _wrap_kion(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def urlopen(manager: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if not url.startswith(self.kion.url):
                return original(manager, method, url, *args, **kwargs)
            path = urlsplit(url).path.removeprefix("/api/v3/")
            site, kind = self._enter(f"kion.{method}-{path}")
            if kind == KILLED_BEFORE:
                self._saw(site, "LambdaKilled")
                raise LambdaKilled(f"killed before Kion {method} {path}")
            if kind == "refused":
                url = url.replace(self.kion.url, f"https://127.0.0.1:{self._closed_port}", 1)
            if kind == "http-500":
                self.kion.fail_requests(500, count=None)
            try:
                response = original(manager, method, url, *args, **kwargs)
            except Exception as error:
                if kind not in AFTER_KINDS:
                    self._saw(site, type(error).__name__, kind)
                    raise
                response = None  # a kill or a lost reply comes after a failed call too
            finally:
                if kind == "http-500":
                    self.kion.clear_faults()
            if kind == LOST:
                self._saw(site, "MaxRetryError", kind)
                raise MaxRetryError(None, url, ProtocolError("Connection aborted (injected)"))
            if kind == KILLED_AFTER:
                self._saw(site, "LambdaKilled", kind)
                raise LambdaKilled(f"killed after Kion {method} {path}")
            self._saw(site, f"HTTP {response.status}")
            return response

        return urlopen

    # -- SMTP -------------------------------------------------------------------------------

    def _wrap_connect(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def connect(session: smtplib.SMTP, host: str = "localhost", port: int = 0, *args: Any):
            site, kind = self._enter("smtp.connect")
            if kind == KILLED_BEFORE:
                self._saw(site, "LambdaKilled")
                raise LambdaKilled("killed before the SMTP connect")
            if kind == "refused":
                port = self._closed_port
            if kind == "silent":
                port = self.silent.port
            return self._smtp_call(site, kind, "connect", session, original, host, port, *args)

        return connect

    def _wrap_auth(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def auth(session: smtplib.SMTP, mechanism: str, *args: Any, **kwargs: Any) -> Any:
            site, kind = self._enter("smtp.auth")
            if kind == KILLED_BEFORE:
                self._saw(site, "LambdaKilled")
                raise LambdaKilled("killed before SMTP AUTH")
            refusing = self.smtp.refuse_all
            self.smtp.refuse_all = refusing or kind == "smtp-535"
            try:
                authenticate = partial(original, **kwargs)
                return self._smtp_call(site, kind, "AUTH", session, authenticate, mechanism, *args)
            finally:
                self.smtp.refuse_all = refusing

        return auth

    def _wrap_send(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def sendmail(session: smtplib.SMTP, *args: Any, **kwargs: Any) -> Any:
            site, kind = self._enter("smtp.send")
            if kind == KILLED_BEFORE:
                self._saw(site, "LambdaKilled")
                raise LambdaKilled("killed before the SMTP message")
            paused, throttled = self.smtp.sending_paused, self.smtp.throttle_next
            self.smtp.sending_paused = paused or kind == "smtp-554"
            self.smtp.throttle_next = 99 if kind == "smtp-454" else throttled
            try:
                send = partial(original, **kwargs)
                return self._smtp_call(site, kind, "DATA", session, send, *args)
            finally:
                self.smtp.sending_paused, self.smtp.throttle_next = paused, throttled

        return sendmail

    def _smtp_call(
        self,
        site: CallSite | None,
        kind: str | None,
        what: str,
        session: smtplib.SMTP,
        original: Callable[..., Any],
        *args: Any,
    ) -> Any:
        """Make the SMTP call; then lose its reply or kill the function, whatever it answered."""
        try:
            reply = original(session, *args)
        except Exception as error:
            if kind not in AFTER_KINDS:
                self._saw(site, type(error).__name__, kind)
                raise
        else:
            if kind not in AFTER_KINDS:
                self._saw(site, "ok")
                return reply
        if kind == LOST:
            session.close()
            self._saw(site, "SMTPServerDisconnected", kind)
            raise smtplib.SMTPServerDisconnected(f"Connection lost after {what} (injected)")
        self._saw(site, "LambdaKilled", kind)
        raise LambdaKilled(f"killed after SMTP {what}")


def _aws_outcome(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response["Error"]["Code"])
    return type(error).__name__


def _service(model: Any) -> str:
    return str(model.service_model.service_name)


def _aws_error(kind: str, call: str) -> Exception:
    service, operation = call.split(".", 1)
    if kind == "unreachable":
        return EndpointConnectionError(endpoint_url=f"https://{service}.invalid (injected)")
    if kind == "access-denied":  # each service's own code for it
        code = "AccessDenied" if service in ("iam", "sts") else "AccessDeniedException"
        status = 403
    elif kind == THROTTLED:
        code, status = "Throttling", 400
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
