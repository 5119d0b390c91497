"""A loopback SMTP server that authenticates like Amazon SES SMTP, backed by moto's IAM keys.

SES SMTP takes an IAM access key id as the user name and the password derived from that key's
secret for the endpoint's region. :class:`SesSmtpServer` accepts exactly those passwords for the
keys a :data:`KeyLookup` reports as existing and active, refuses fresh keys for a settable
propagation delay, and answers like SES (``235``/``535``). :class:`SilentSmtpServer` accepts TCP
connections and never answers, for client timeouts.
"""

from __future__ import annotations

import hmac
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from smtp_rotation.smtp_password import derive_smtp_password

from .tls import LoopbackCertificates

AUTH_OK = "235 Authentication successful."
AUTH_INVALID = "535 Authentication Credentials Invalid"

AuthOutcome = Literal[
    "accepted", "unknown_key", "inactive_key", "wrong_password", "propagating", "refuse_all"
]


@dataclass(frozen=True)
class KeyRecord:
    """What the SMTP server needs to know about one IAM access key."""

    secret_access_key: str
    active: bool
    created_at: datetime  # aware, UTC

    def __repr__(self) -> str:
        return f"KeyRecord(active={self.active}, created_at={self.created_at.isoformat()})"


KeyLookup = Callable[[str], KeyRecord | None]
"""``key_lookup(access_key_id)``: the key's record, or None when no such key exists."""


@dataclass(frozen=True)
class AuthAttempt:
    """One SMTP AUTH: who tried, when (server clock, epoch seconds), and the answer. No password."""

    access_key_id: str
    accepted: bool
    outcome: AuthOutcome
    mechanism: str
    at: float


def moto_key_lookup(account_id: str = "123456789012") -> KeyLookup:
    """A key lookup that reads moto's in-process IAM backends for ``account_id``.

    Works under ``moto.mock_aws`` and with ``moto.server.ThreadedMotoServer`` in the same process.
    It only reads backends that already exist (never creates one), so it is quick and safe to call
    from the SMTP server's thread.
    """
    from moto.iam.models import iam_backends
    from moto.utilities.utils import PARTITION_NAMES

    def lookup(access_key_id: str) -> KeyRecord | None:
        account = dict.get(iam_backends, account_id)
        if account is None:
            return None
        for partition in PARTITION_NAMES:
            backend = dict.get(account, partition)
            key = None if backend is None else backend.access_keys.get(access_key_id)
            if key is not None:
                created = key.create_date
                if created.tzinfo is None:
                    created = created.replace(tzinfo=UTC)
                return KeyRecord(key.secret_access_key, key.status == "Active", created)
        return None

    return lookup


class _MailCounter:
    """aiosmtpd handler: accepts mail from authenticated sessions and counts it."""

    def __init__(self) -> None:
        self.messages = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.messages += 1
        return "250 Ok"


class _Session(Session):
    """aiosmtpd's session without the deprecation warning it logs on every successful AUTH."""

    login_data: Any = None


class _SesSmtp(SMTP):
    """aiosmtpd's SMTP with SES answers; the credential check runs off the event loop thread."""

    def __init__(
        self,
        handler: Any,
        *,
        check: Callable[[str, bytes, bytes], bool],
        implicit_tls: bool,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, authenticator=_pass_through, **kwargs)
        self._check = check
        if implicit_tls:
            # The whole connection is TLS; aiosmtpd only counts STARTTLS as TLS for AUTH.
            self._auth_require_tls = False

    def _create_session(self) -> Session:
        return _Session(self.loop)

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:  # noqa: N802
        return await self._verify("PLAIN", await super().auth_PLAIN(server, args))

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:  # noqa: N802
        return await self._verify("LOGIN", await super().auth_LOGIN(server, args))

    async def _verify(self, mechanism: str, parsed: AuthResult) -> AuthResult:
        credential = parsed.auth_data
        if not isinstance(credential, LoginPassword):
            return parsed  # aiosmtpd already answered a malformed or aborted AUTH
        accepted = await self.loop.run_in_executor(
            None, self._check, mechanism, credential.login, credential.password
        )
        if accepted:
            return AuthResult(success=True, message=AUTH_OK, auth_data=credential.login)
        return AuthResult(success=False, handled=False, message=AUTH_INVALID)


def _pass_through(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    """Hand the parsed credential to ``_SesSmtp._verify``; it decides, off the loop thread."""
    return AuthResult(success=False, handled=False, auth_data=auth_data)


class _Controller(Controller):
    """aiosmtpd's threaded controller, listening on a socket bound before it starts."""

    def __init__(
        self,
        handler: _MailCounter,
        listener: socket.socket,
        factory: Callable[[_MailCounter], SMTP],
        **kwargs: Any,
    ) -> None:
        host, port = listener.getsockname()[:2]
        super().__init__(handler, hostname=host, port=port, **kwargs)
        self._listener = listener
        self._make_smtp = factory

    def factory(self) -> SMTP:
        return self._make_smtp(self.handler)

    def _create_server(self) -> Any:
        return self.loop.create_server(
            self._factory_invoker, sock=self._listener, ssl=self.ssl_context
        )


def _bind_loopback(host: str) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Accepted sockets inherit this; without it small replies wait for delayed ACKs (~40 ms).
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind((host, 0))
    listener.listen(16)
    return listener


class SesSmtpServer:
    """An SMTP server on loopback that authenticates like SES SMTP.

    ``implicit_tls=False`` behaves like SES ports 25/587/2587 (STARTTLS, required before AUTH);
    ``implicit_tls=True`` like 465/2465 (TLS from the first byte). AUTH PLAIN and LOGIN are
    offered, and AUTH is required before mail. A credential is accepted when the user name is an
    access key id that ``key_lookup`` reports as active, the key is at least ``propagation_delay``
    seconds old by ``clock``, and the password is the one derived from its secret for ``region``.

    Switches that may be flipped while it runs: ``propagation_delay``, ``refuse_all``.
    """

    def __init__(
        self,
        key_lookup: KeyLookup | None = None,
        *,
        region: str = "us-east-1",
        implicit_tls: bool = False,
        propagation_delay: float = 0.0,
        clock: Callable[[], float] = time.time,
        certificates: LoopbackCertificates | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.key_lookup: KeyLookup = key_lookup or moto_key_lookup()
        self.region = region
        self.implicit_tls = implicit_tls
        self.propagation_delay = propagation_delay
        self.clock = clock
        self.refuse_all = False
        self.certificates = certificates or LoopbackCertificates()
        self.host = host
        self.port = 0
        self.auth_attempts: list[AuthAttempt] = []
        self._mail = _MailCounter()
        self._lock = threading.Lock()
        self._controller: _Controller | None = None

    @property
    def ca_pem(self) -> str:
        """The PEM CA certificate that clients must trust."""
        return self.certificates.ca_pem

    @property
    def messages_received(self) -> int:
        """How many messages were accepted with DATA (the rotation itself sends none)."""
        return self._mail.messages

    def accepted_logins(self, access_key_id: str | None = None) -> int:
        """How many AUTH attempts were accepted (for one access key id, or for all)."""
        with self._lock:
            return sum(
                1
                for attempt in self.auth_attempts
                if attempt.accepted and access_key_id in (None, attempt.access_key_id)
            )

    def check_credential(self, access_key_id: str, smtp_password: str) -> AuthOutcome:
        """Decide, as SES would now, whether this user name and password authenticate."""
        if self.refuse_all:
            return "refuse_all"
        record = self.key_lookup(access_key_id)
        if record is None:
            return "unknown_key"
        if not record.active:
            return "inactive_key"
        expected = derive_smtp_password(record.secret_access_key, self.region)
        if not hmac.compare_digest(expected.encode("utf-8"), smtp_password.encode("utf-8")):
            return "wrong_password"
        age = self.clock() - record.created_at.timestamp()
        if self.propagation_delay > 0 and age < self.propagation_delay:
            return "propagating"
        return "accepted"

    def _check(self, mechanism: str, login: bytes, password: bytes) -> bool:
        access_key_id = login.decode("utf-8", errors="replace")
        outcome = self.check_credential(access_key_id, password.decode("utf-8", errors="replace"))
        attempt = AuthAttempt(
            access_key_id, outcome == "accepted", outcome, mechanism, self.clock()
        )
        with self._lock:
            self.auth_attempts.append(attempt)
        return attempt.accepted

    def _make_smtp(self, handler: _MailCounter) -> SMTP:
        return _SesSmtp(
            handler,
            check=self._check,
            implicit_tls=self.implicit_tls,
            hostname=f"email-smtp.{self.region}.amazonaws.com",
            ident="SimpleEmailService-loopback",
            tls_context=None if self.implicit_tls else self.certificates.server_context,
            require_starttls=not self.implicit_tls,
            auth_required=True,
            auth_require_tls=True,
        )

    def start(self) -> SesSmtpServer:
        """Bind a free port on ``host`` and serve in a background thread."""
        if self._controller is not None:
            raise RuntimeError("the SMTP server is already running")
        listener = _bind_loopback(self.host)
        self.port = listener.getsockname()[1]
        self._controller = _Controller(
            self._mail,
            listener,
            self._make_smtp,
            ssl_context=self.certificates.server_context if self.implicit_tls else None,
        )
        try:
            self._controller.start()
        except BaseException:
            self._controller = None
            listener.close()
            raise
        return self

    def stop(self) -> None:
        """Stop serving and release the port. Safe to call twice."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> SesSmtpServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class SilentSmtpServer:
    """Accepts TCP connections on loopback and never sends a byte: an SMTP server that hangs."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.connections = 0
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> SilentSmtpServer:
        """Bind a free port and start accepting in a background thread."""
        if self._listener is not None:
            raise RuntimeError("the silent server is already running")
        self._stopping.clear()
        self._listener = _bind_loopback(self.host)
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, args=(self._listener,), daemon=True)
        self._thread.start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._open.append(connection)
            self.connections += 1

    def stop(self) -> None:
        """Close the listener and every held connection. Safe to call twice."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for connection in self._open:
            connection.close()
        self._open.clear()

    def __enter__(self) -> SilentSmtpServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
