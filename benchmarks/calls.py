"""P4: every outside call of one run, with the step that made it and the reason it is made.

The reason is read from the code that makes the call, so the list cannot drift from it: the
function's own call path (the product functions between the step and the call) and the first
sentence of the docstring of the innermost one that is not a service client (``services/``), the
place where the product says why it asks. A call recorded twice with the same target in one step
is marked as a second read, with both paths.

AWS calls are botocore's ``before-parameter-build`` events; Kion requests and SMTP logins are
recorded in urllib3 and smtplib, in the thread that makes them (one per request sent, one per
AUTH, one per message), so retries count as the calls they are.
"""

from __future__ import annotations

import contextlib
import smtplib
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from urllib3.connectionpool import HTTPConnectionPool

PRODUCT = "ses_smtp_rotator.functions."
CLIENTS = PRODUCT + "services."
# Frames that only carry a call through (decorators, the protocol's dispatch): not a reason.
_PLUMBING = frozenset({"aws_call", "decorate", "run_step", "reported_step"})
# Client functions that only read what their name says: their caller gives the reason.
_ACCESSORS = frozenset(
    {"version", "current", "previous", "labelled", "tags", "records", "smtp_settings", "list"}
    | {"until_accepted", "app_config"}
)


@dataclass(frozen=True)
class Call:
    """One outside call: which system, the call and its target, where in the product it came
    from and why."""

    system: str  # "AWS", "Kion", "SMTP"
    step: str
    name: str
    target: str
    path: tuple[str, ...]
    reason: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.system, self.step, self.name, self.target)


@dataclass
class CallLedger:
    """Records the calls made while it is open (``recording``), step by step (``step``)."""

    calls: list[Call] = field(default_factory=list)
    step: str = "-"
    kion_ports: set[int] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def aws(self, event_name: str, params: dict[str, Any] | None = None, **_: Any) -> None:
        """botocore's before-parameter-build event: once per API call, with its parameters."""
        _, service, operation = event_name.split(".", 2)
        self._add("AWS", f"{service}.{operation}", _aws_target(params or {}))

    def _add(self, system: str, name: str, target: str) -> None:
        path, reason = _reason(sys._getframe(2))
        with self._lock:
            self.calls.append(Call(system, self.step, name, target, path, reason))

    @contextlib.contextmanager
    def recording(self, session: Any) -> Iterator[CallLedger]:
        """Record the AWS calls of ``session`` and every Kion request and SMTP login meanwhile."""
        ledger = self
        session.events.register("before-parameter-build", self.aws)
        make_request, auth, sendmail = (
            HTTPConnectionPool._make_request,
            smtplib.SMTP.auth,
            smtplib.SMTP.sendmail,
        )

        def kion_request(pool: Any, conn: Any, method: str, url: str, *args: Any, **kw: Any) -> Any:
            if pool.port in ledger.kion_ports:
                ledger._add("Kion", f"{method} {url.split('?')[0]}", "")
            return make_request(pool, conn, method, url, *args, **kw)

        def smtp_auth(smtp: Any, mechanism: str, *args: Any, **kw: Any) -> Any:
            ledger._add("SMTP", "AUTH", smtp.user or "")
            return auth(smtp, mechanism, *args, **kw)

        def smtp_send(smtp: Any, sender: str, recipients: Any, *args: Any, **kw: Any) -> Any:
            ledger._add("SMTP", "message", ",".join(recipients))
            return sendmail(smtp, sender, recipients, *args, **kw)

        HTTPConnectionPool._make_request = kion_request  # type: ignore[method-assign]
        smtplib.SMTP.auth = smtp_auth  # type: ignore[method-assign]
        smtplib.SMTP.sendmail = smtp_send  # type: ignore[method-assign]
        try:
            yield self
        finally:
            HTTPConnectionPool._make_request = make_request  # type: ignore[method-assign]
            smtplib.SMTP.auth = auth  # type: ignore[method-assign]
            smtplib.SMTP.sendmail = sendmail  # type: ignore[method-assign]
            session.events.unregister("before-parameter-build", self.aws)

    def since(self, mark: int) -> list[Call]:
        with self._lock:
            return self.calls[mark:]

    def mark(self) -> int:
        with self._lock:
            return len(self.calls)


def _aws_target(params: dict[str, Any]) -> str:
    """What a call reads or changes: its resource and selector (never a value)."""
    parts = []
    for name in ("SecretId", "UserName", "AccessKeyId", "VersionStage", "VersionId"):
        if name in params:
            value = str(params[name])
            if name == "SecretId":
                value = value.rsplit(":", 1)[-1]
            parts.append(f"{name}={value}")
    if "MoveToVersionId" in params:
        parts.append(f"{params.get('VersionStage')}->new")
    if "Tags" in params or "TagKeys" in params:
        parts.append("tags")
    return " ".join(parts)


def _reason(frame: FrameType | None) -> tuple[tuple[str, ...], str]:
    """The product functions on the stack (outermost first) and the reason: the first sentence
    of the innermost non-client one's docstring, and where a client function makes the call on
    its own behalf (a client function between it and the call), that one's too."""
    path: list[str] = []
    reason, client_frames = "", []
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        name = frame.f_code.co_name
        if module.startswith(PRODUCT) and name not in _PLUMBING and not name.startswith("<"):
            path.append(name)
            if module.startswith(CLIENTS) and not reason:
                client_frames.append(frame)
            elif not reason:
                reason = _first_sentence(_docstring(frame))
        frame = frame.f_back
    if len(client_frames) >= 2 and client_frames[-1].f_code.co_name not in _ACCESSORS:
        outer = client_frames[-1]
        reason += f" (in {outer.f_code.co_name}: {_first_sentence(_docstring(outer))})"
    return tuple(reversed(path)), reason


def _docstring(frame: FrameType) -> str:
    code = frame.f_code
    target: Any = None
    qualname = getattr(code, "co_qualname", code.co_name)
    if "<locals>" not in qualname:
        target = frame.f_globals
        for part in qualname.split("."):
            target = target.get(part) if isinstance(target, dict) else getattr(target, part, None)
            if target is None:
                break
    return getattr(target, "__doc__", None) or ""


def _first_sentence(text: str) -> str:
    flat = " ".join(text.split())
    end = flat.find(". ")
    return flat if end < 0 else flat[: end + 1]


def second_reads(calls: list[Call]) -> dict[int, int]:
    """For each call that repeats an earlier one of the same step (same call, same target),
    the index of the first."""
    first: dict[tuple[str, str, str, str], int] = {}
    repeats: dict[int, int] = {}
    for index, call in enumerate(calls):
        if call.system == "SMTP" or call.name.split()[0] in ("PATCH", "POST", "DELETE"):
            continue  # logins are counted on purpose; changes are no reads
        if call.key in first:
            repeats[index] = first[call.key]
        else:
            first[call.key] = index
    return repeats


def table(title: str, calls: list[Call], out: Any) -> None:
    """The calls as a table: step, call, target, the path that made it and its reason."""
    repeats = second_reads(calls)
    counts = {system: sum(c.system == system for c in calls) for system in ("AWS", "Kion", "SMTP")}
    print(
        f"\n{title}: {counts['AWS']} AWS calls, {counts['Kion']} Kion requests, "
        f"{counts['SMTP']} SMTP AUTHs and messages",
        file=out,
    )
    for index, call in enumerate(calls, 1):
        again = f"  [again: as call {repeats[index - 1] + 1}]" if index - 1 in repeats else ""
        print(
            f"  {index:>2} {call.step:<13} {call.system:<4} {call.name} {call.target}{again}",
            file=out,
        )
        print(f"     {'':<13} via {' > '.join(call.path) or '-'}", file=out)
        if call.reason:
            print(f"     {'':<13} why: {call.reason}", file=out)
