"""A loopback HTTPS stand-in for the Kion API: app-config and App API keys, with fault switches.

It implements ``GET``/``PATCH /api/v3/app-config`` and the App API key routes (see
:mod:`.kion_app_api_keys`) with bearer-token checks and Kion's JSON envelopes:
``{"status": 200, "data": ...}`` on success and ``{"status": <code>, "message": ...}`` on errors.
Switches make it fail requests, answer HTML, answer slowly, or lose the reply to a PATCH it has
applied. A request log records method, path, status and the names of patched fields; never a
body value or a header.
"""

from __future__ import annotations

import copy
import json
import secrets
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from .kion_app_api_keys import AppApiKey, AppApiKeys, KeyRouteError, KionExchange, key_route_methods
from .tls import LoopbackCertificates

APP_CONFIG_PATH = "/api/v3/app-config"
FAULT_STATUSES = frozenset({400, 401, 403, 404, 422, 429, 500, 502, 503, 504})
# How long clear_faults waits for requests held by a delay to be decided (a bound for a stuck
# server thread; deciding takes a moment).
_DECIDE_BOUND = 10.0
HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>Sign in</title></head>"
    b"<body><h1>Please sign in</h1></body></html>"
)

PatchFailure = Literal["error", "drop"]


def default_app_config() -> dict[str, Any]:
    """A realistic Kion 3.x application-settings object, SMTP pointed at SES us-east-1."""
    return {
        "allow_custom_permissions": False,
        "allow_password_login": True,
        "app_api_key_lifespan": 30,
        "app_api_key_limit": 5,
        "budget_mode": False,
        "cost_savings_enabled": True,
        "enforce_funding": False,
        "enforce_funding_sources": False,
        "login_banner": "",
        "reserved_instances_enabled": False,
        "resource_inventory_enabled": True,
        "session_timeout_minutes": 60,
        "smtp_enabled": True,
        "smtp_from": "kion@example.com",
        "smtp_host": "email-smtp.us-east-1.amazonaws.com",
        "smtp_password": "",
        "smtp_port": 587,
        "smtp_skip_verify": False,
        "smtp_username": "",
        "supported_aws_regions": ["us-east-1", "us-west-2"],
    }


@dataclass(frozen=True)
class KionRequest:
    """One request as the stand-in saw it. ``status`` is None when the connection was dropped."""

    method: str
    path: str
    status: int | None
    fields: tuple[str, ...] = ()  # names of the settings a PATCH changed
    at: float = 0.0


@dataclass
class _Fault:
    status: int
    remaining: int | None  # None: every matching request
    methods: frozenset[str] | None
    message: str
    retry_after: int | None


class _Reply(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised inside a route to answer with a Kion error envelope."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class KionStandIn:
    """Kion's App API on ``https://127.0.0.1:<free port>``, for tests and the local demo.

    ``app_config`` overrides are merged onto :func:`default_app_config` (new names extend the
    schema). ``api_keys`` are the App API keys accepted as bearer tokens (until they expire by
    ``app_api_key_lifespan`` on ``clock``); by default one random key (:attr:`api_key`). With
    ``mask_password`` GET shows ``smtp_password`` as ``password_mask`` (``""`` by default; Kion
    versions mask in other styles too, e.g. ``"********"``). ``omitted_fields`` are left out of GET
    replies, as older or restricted Kions do. The SMTP settings (``smtp_host``, ``smtp_port``,
    ``smtp_from``, ``smtp_enabled``) take any value, so Kion can send through any host or region.
    ``observers`` see every JSON exchange (tests check them against Kion's OpenAPI description).
    Like a strict API server it answers 415 to a PATCH or POST whose body is not declared
    ``application/json``, 406 to a request whose ``Accept`` header rules JSON out, and 400 to a
    GET or DELETE that carries a body. ``foreign_reply`` (a status and a JSON object) answers
    every request as something that is not Kion's v3 API would: a gateway's own error, another
    API version.
    """

    def __init__(
        self,
        app_config: Mapping[str, Any] | None = None,
        *,
        api_keys: Iterable[str] | None = None,
        mask_password: bool = False,
        certificates: LoopbackCertificates | None = None,
        host: str = "127.0.0.1",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app_config: dict[str, Any] = {**default_app_config(), **(app_config or {})}
        self.clock = clock
        keys = list(api_keys) if api_keys is not None else [secrets.token_urlsafe(24)]
        self.api_keys = AppApiKeys(
            keys, clock=lambda: self.clock(), settings=lambda: self.app_config
        )
        self.observers: list[Callable[[KionExchange], None]] = []
        self.mask_password = mask_password
        self.password_mask = ""
        self.omitted_fields: set[str] = set()
        self.certificates = certificates or LoopbackCertificates()
        self.host = host
        self.port = 0
        self.delay = 0.0
        self.html_replies = False
        self.html_status = 200
        self.foreign_reply: tuple[int, dict[str, Any]] | None = None
        self.request_log: list[KionRequest] = []
        self.tls_connections = 0
        """Connections whose TLS handshake began, including those the client then gave up on
        (counted before the server's first handshake message, so before any client can fail)."""
        self._faults: list[_Fault] = []
        self._patch_failure: PatchFailure | None = None
        self._patch_failures_left: int | None = None
        self._lock = threading.RLock()
        self._delay_ends = threading.Condition(self._lock)
        self._delays_cut = 0  # how often clear_faults has ended the running delays
        self._held = 0  # requests waiting out ``delay`` now
        self._stopping = threading.Event()
        self._server: _TlsHttpServer | None = None
        self._thread: threading.Thread | None = None

    # -- attributes -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL to use as ``kion_url``."""
        return f"https://{self.host}:{self.port}"

    @property
    def ca_pem(self) -> str:
        """The PEM CA certificate that clients must trust."""
        return self.certificates.ca_pem

    @property
    def api_key(self) -> str:
        """The first valid App API key (raises KeyError when none is left)."""
        for key in self.api_keys.live_keys():
            return key
        raise KeyError("the Kion stand-in has no valid App API key")

    def requests_to(self, method: str, path: str = APP_CONFIG_PATH) -> list[KionRequest]:
        """The logged requests with this method and path."""
        with self._lock:
            return [r for r in self.request_log if r.method == method and r.path == path]

    # -- switches ---------------------------------------------------------------------------

    def fail_requests(
        self,
        status: int,
        count: int | None = 1,
        *,
        methods: Iterable[str] | None = None,
        message: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next ``count`` requests (all, with None) with ``status`` and Kion's error.

        ``methods`` limits the fault to those HTTP methods. Faults queue up in order; each request
        uses the first one that matches it. The fault comes before the bearer check, like a proxy.
        """
        if status not in FAULT_STATUSES:
            raise ValueError(f"unsupported fault status {status}")
        text = message or HTTPStatus(status).phrase
        chosen = frozenset(m.upper() for m in methods) if methods is not None else None
        with self._lock:
            self._faults.append(_Fault(status, count, chosen, text, retry_after))

    def patch_applies_then_fails(self, mode: PatchFailure = "error", count: int | None = 1) -> None:
        """Apply the next ``count`` PATCHes (all, with None), then answer 500 or hang up.

        This is the "reply lost" case: Kion changed its settings but the client cannot know.
        """
        with self._lock:
            self._patch_failure = mode
            self._patch_failures_left = count

    def clear_faults(self) -> None:
        """Turn every fault switch off: failures, HTML and foreign replies, delay, lost PATCH
        replies.

        Requests still waiting out a delay end their wait now, and are decided (logged; dropped
        when their client gave up) before this returns: none lands in a later test's log."""
        with self._delay_ends:
            self._faults.clear()
            self._patch_failure = None
            self._patch_failures_left = None
            self.html_replies = False
            self.foreign_reply = None
            self.delay = 0.0
            self._delays_cut += 1
            self._delay_ends.notify_all()
            self._delay_ends.wait_for(lambda: self._held == 0, timeout=_DECIDE_BOUND)

    def create_api_key(self) -> tuple[int, str]:
        """Issue a new valid App API key; returns ``(id, key)``."""
        record = self.api_keys.issue()
        return record.id, record.key

    def revoke_api_key(self, key_id: int) -> bool:
        """Make the key with this id invalid; False when there was none."""
        return self.api_keys.revoke(key_id)

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> KionStandIn:
        """Bind a free port on ``host`` and serve HTTPS in a background thread."""
        if self._server is not None:
            raise RuntimeError("the Kion stand-in is already running")
        self._stopping.clear()
        server = _TlsHttpServer((self.host, 0), _Handler, self.certificates.server_context, self)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port. Safe to call twice."""
        with self._delay_ends:
            self._stopping.set()
            self._delay_ends.notify_all()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> KionStandIn:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- request handling (called from the server's threads) ---------------------------------

    @contextmanager
    def _held_by_delay(self) -> Iterator[None]:
        """Wait out ``delay`` (cut short by ``clear_faults`` or ``stop``); the request counts as
        held until the block that decides it ends."""
        with self._delay_ends:
            self._held += 1
            cut = self._delays_cut
            self._delay_ends.wait_for(
                lambda: self._delays_cut != cut or self._stopping.is_set(), timeout=self.delay
            )
        try:
            yield
        finally:
            with self._delay_ends:
                self._held -= 1
                self._delay_ends.notify_all()

    def _take_fault(self, method: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.methods is None or method in fault.methods:
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self._faults.remove(fault)
                    return fault
            return None

    def _take_patch_failure(self) -> PatchFailure | None:
        with self._lock:
            mode = self._patch_failure
            if mode is not None and self._patch_failures_left is not None:
                self._patch_failures_left -= 1
                if self._patch_failures_left <= 0:
                    self._patch_failure = None
                    self._patch_failures_left = None
            return mode

    def _authorized(self, header: str | None) -> AppApiKey | None:
        if not header or not header.startswith("Bearer "):
            return None
        return self.api_keys.authenticate(header[len("Bearer ") :].strip())

    def _log(self, method: str, path: str, status: int | None, fields: tuple[str, ...]) -> None:
        with self._lock:
            self.request_log.append(KionRequest(method, path, status, fields, self.clock()))

    def _get_app_config(self) -> tuple[int, dict[str, Any]]:
        with self._lock:
            data = copy.deepcopy(self.app_config)
        if self.mask_password:
            data["smtp_password"] = self.password_mask
        for name in self.omitted_fields:
            data.pop(name, None)
        return 200, {"status": 200, "data": data}

    def _validate_patch(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _Reply(400, "request body must be a JSON object of settings to update")
        with self._lock:
            current = dict(self.app_config)
        for name, value in body.items():
            if name not in current:
                raise _Reply(400, f"unknown application setting: {name}")
            expected = current[name]
            if expected is not None and type(value) is not type(expected):
                raise _Reply(
                    400, f"{name} must be of type {_json_type(expected)}, not {_json_type(value)}"
                )
        return body

    def _patch_app_config(self, body: Any) -> tuple[int, dict[str, Any], tuple[str, ...]]:
        changes = self._validate_patch(body)
        with self._lock:
            self.app_config.update(copy.deepcopy(changes))
        return 201, {"status": 200, "message": "Application settings updated"}, tuple(changes)


def _json_type(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}
    return names.get(type(value), "object" if isinstance(value, dict) else type(value).__name__)


class _TlsHttpServer(ThreadingHTTPServer):
    """A threading HTTP server that does each TLS handshake in the request's own thread."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        context: ssl.SSLContext,
        kion: KionStandIn,
    ) -> None:
        self.context = context
        self.kion = kion
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # Skip HTTPServer.server_bind's getfqdn(), which may do a DNS lookup.
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(10.0)
        with self.kion._lock:
            self.kion.tls_connections += 1
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return  # the client gave up on the handshake, e.g. it does not trust our CA
        try:
            self.RequestHandlerClass(tls, client_address, self)
        except (OSError, ssl.SSLError):
            pass  # the client went away mid-request
        finally:
            tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: clients that hang up are part of the tests."""


class _Handler(BaseHTTPRequestHandler):
    """Routes one request to the :class:`KionStandIn` that owns the server."""

    server: _TlsHttpServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server_version = "KionStandIn/1.0"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr (the stand-in keeps its own, secret-free log)."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _serve(self, method: str) -> None:
        kion = self.server.kion
        path = self.path.split("?", 1)[0]
        raw = self._read_body()
        if kion.delay > 0:
            with kion._held_by_delay():
                if self._client_gave_up():  # as a server whose client hung up: nothing applies
                    kion._log(method, path, None, ())
                    return
        if kion.html_replies:
            kion._log(method, path, kion.html_status, ())
            self._send(kion.html_status, HTML_PAGE, "text/html; charset=utf-8", {})
            return
        fields: tuple[str, ...] = ()
        lost: PatchFailure | None = None
        extra_headers: dict[str, str] = {}
        try:
            status, reply, fields, lost = self._route(kion, method, path, raw, extra_headers)
        except _Reply as error:
            status, reply = error.status, {"status": error.status, "message": error.message}
        if lost == "drop":
            kion._log(method, path, None, fields)
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if lost == "error":
            status = 500
            reply = {"status": 500, "message": "Internal Server Error"}
        kion._log(method, path, status, fields)
        payload = json.dumps(reply).encode("utf-8")
        for observe in list(kion.observers):
            observe(KionExchange(method, self.path, dict(self.headers), raw, status, payload))
        self._send(status, payload, "application/json", extra_headers)

    def _route(
        self,
        kion: KionStandIn,
        method: str,
        path: str,
        raw: bytes,
        extra_headers: dict[str, str],
    ) -> tuple[int, dict[str, Any], tuple[str, ...], PatchFailure | None]:
        if kion.foreign_reply is not None:
            status, reply = kion.foreign_reply
            return status, copy.deepcopy(reply), (), None
        fault = kion._take_fault(method)
        if fault is not None:
            if fault.retry_after is not None:
                extra_headers["Retry-After"] = str(fault.retry_after)
            raise _Reply(fault.status, fault.message)
        if not _accepts_json(self.headers.get("Accept")):
            raise _Reply(406, f"{method} {path} answers application/json only")
        allowed = {"GET", "PATCH"} if path == APP_CONFIG_PATH else key_route_methods(path)
        if allowed is None:
            raise _Reply(404, f"route not found: {method} {path}")
        if method not in allowed:
            raise _Reply(405, f"method {method} not allowed on {path}")
        caller = kion._authorized(self.headers.get("Authorization"))
        if caller is None:
            raise _Reply(401, "invalid, expired or missing App API key")
        if method in {"PATCH", "POST"}:
            media_type = _media_type(self.headers.get("Content-Type") or "")
            if media_type != "application/json":
                raise _Reply(415, f"{method} {path} takes application/json, not {media_type!r}")
        elif raw:
            raise _Reply(400, f"{method} {path} takes no request body")
        body = _parse_json(raw) if method in {"PATCH", "POST"} else None
        if path == APP_CONFIG_PATH and method == "GET":
            return (*kion._get_app_config(), (), None)
        if path == APP_CONFIG_PATH:
            status, reply, fields = kion._patch_app_config(body)
            return status, reply, fields, kion._take_patch_failure()
        try:
            return (*kion.api_keys.serve(method, path, body, caller), (), None)
        except KeyRouteError as error:
            raise _Reply(error.status, error.message) from None

    def _client_gave_up(self) -> bool:
        """True when the client closed the connection while the request waited."""
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return not self.connection.recv(1)
        except (OSError, ssl.SSLError):
            return True

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(
        self, status: int, payload: bytes, content_type: str, headers: dict[str, str]
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


def _media_type(value: str) -> str:
    """The media type of a ``Content-Type`` value or ``Accept`` range, without parameters, in
    lower case (media types are case-insensitive)."""
    return value.split(";", 1)[0].strip().lower()


def _accepts_json(accept: str | None) -> bool:
    """Whether an ``Accept`` header (absent: anything) lets the reply be JSON."""
    if accept is None:
        return True
    ranges = (_media_type(part) for part in accept.split(","))
    return any(media in {"application/json", "application/*", "*/*"} for media in ranges)


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8")) if raw else None
    except (ValueError, UnicodeDecodeError):
        raise _Reply(400, "request body is not valid JSON") from None
