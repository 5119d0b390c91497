"""A loopback SMTP server that authenticates and takes mail like Amazon SES SMTP, backed by
moto's IAM keys.

SES SMTP takes an IAM access key id as the user name and the password derived from that key's
secret for the endpoint's region. :class:`SesSmtpServer` serves one region: it accepts exactly
those passwords for the keys a :data:`KeyLookup` reports as existing and active, refuses fresh
keys for a settable propagation delay and then, for a settable while, accepts and refuses them by
turns (as SES's many servers do while a key propagates), and answers like SES (``235``/``535``).
Mail is judged as SES judges it after ``DATA``: verified identities, the sandbox, users limited by
a ``ses:FromAddress`` condition, a paused account and throttling, each with SES's reply; every
message is recorded. :class:`SesSmtpRegions` runs several regions at once.

Host names: a regional server is known by its region's SES host name (:attr:`host_name`,
``email-smtp.<region>.amazonaws.com``, in the region's partition) but listens on a loopback port
of its own, one listener per region. Kion's settings name the host name (where Kion sends), the
installation secret names the loopback address and port (where the function proves a credential,
as it would a VPC endpoint's address), and tests map a host name to its server with
:meth:`SesSmtpRegions.server_for`. Nothing in the function resolves names differently under test.
:class:`SilentSmtpServer` accepts TCP connections and never answers, for client timeouts.
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

from ses_smtp_rotator.functions.regions import default_smtp_host
from ses_smtp_rotator.functions.services.ses_hosts import ses_smtp_host
from ses_smtp_rotator.functions.services.smtp_password import derive_smtp_password

from .tls import LoopbackCertificates

AUTH_OK = "235 Authentication successful."
AUTH_INVALID = "535 Authentication Credentials Invalid"
MAILBOX_SIMULATOR_DOMAIN = "simulator.amazonses.com"
SENDING_PAUSED = (
    "554 Sending paused for this account. For more information, please check the AWS "
    "Management Console."
)
NOT_VERIFIED = (
    "554 Message rejected: Email address is not verified. The following identities failed the "
    "check in region {region}: {address}"
)
ACCESS_DENIED = (
    "554 Access denied: User `arn:aws:iam::{account}:user/{user}' is not authorized to perform "
    "`ses:SendRawEmail' on resource `arn:aws:ses:{region}:{account}:identity/{address}'"
)
THROTTLED = "454 Throttling failure: Maximum sending rate exceeded."

AuthOutcome = Literal[
    "accepted", "unknown_key", "inactive_key", "wrong_password", "propagating", "refuse_all"
]


@dataclass(frozen=True)
class KeyRecord:
    """What the SMTP server needs to know about one IAM access key."""

    secret_access_key: str
    active: bool
    created_at: datetime  # aware, UTC
    user_name: str = ""

    def __repr__(self) -> str:
        return (
            f"KeyRecord(user_name={self.user_name!r}, active={self.active}, "
            f"created_at={self.created_at.isoformat()})"
        )


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
                return KeyRecord(
                    key.secret_access_key, key.status == "Active", created, key.user_name or ""
                )
        return None

    return lookup


@dataclass(frozen=True)
class ReceivedMessage:
    """One message a client sent after DATA, with SES's answer. No body is kept."""

    region: str
    access_key_id: str
    sender: str
    recipients: tuple[str, ...]
    reply: str

    @property
    def accepted(self) -> bool:
        return self.reply.startswith("250")


class _MailJudge:
    """aiosmtpd handler: judges each message as SES does after DATA, and records it."""

    def __init__(self, server: SesSmtpServer) -> None:
        self.server = server

    async def handle_EHLO(  # noqa: N802
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """A server left with no AUTH mechanism does not advertise AUTH at all."""
        session.host_name = hostname
        return [line for line in responses if line.rstrip() != "250-AUTH"]

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        login = session.auth_data
        access_key_id = login.decode("utf-8", "replace") if isinstance(login, bytes) else ""
        return self.server.judge_message(
            access_key_id, envelope.mail_from or "", tuple(envelope.rcpt_tos)
        )


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
        handler: _MailJudge,
        listener: socket.socket,
        factory: Callable[[_MailJudge], SMTP],
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


def _bind_loopback(host: str, port: int = 0) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this; without it small replies wait for delayed ACKs (~40 ms).
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind((host, port))
    listener.listen(16)
    return listener


class SesSmtpServer:
    """An SMTP server on loopback that authenticates and takes mail like SES SMTP in ``region``.

    ``implicit_tls=False`` behaves like SES ports 25/587/2587 (STARTTLS, required before AUTH);
    ``implicit_tls=True`` like 465/2465 (TLS from the first byte). AUTH PLAIN and LOGIN are
    offered, and AUTH is required before mail. A credential is accepted when the user name is an
    access key id that ``key_lookup`` reports as active, the key is at least ``propagation_delay``
    seconds old by ``clock``, and the password is the one derived from its secret for ``region``.
    For ``propagation_flaps`` seconds after that, logins with the key are accepted and refused by
    turns.

    Switches that may be flipped while it runs: ``propagation_delay``, ``propagation_flaps``,
    ``refuse_all``, ``verified_identities`` (addresses and domains; the mailbox simulator needs
    none), ``sandbox`` (recipients must be verified too), ``sending_paused``,
    ``from_addresses`` (IAM user name -> the only senders its ``ses:FromAddress`` condition
    allows), ``throttle_next`` (how many coming messages get 454), ``excluded_mechanisms`` (AUTH
    mechanisms not offered, e.g. ``("PLAIN",)``, as a relay in front of SES might; with none left,
    AUTH is not advertised). :meth:`reset`
    turns them off.
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
        account_id: str = "123456789012",
    ) -> None:
        self.key_lookup: KeyLookup = key_lookup or moto_key_lookup(account_id)
        self.region = region
        self.implicit_tls = implicit_tls
        self.clock = clock
        self.certificates = certificates or LoopbackCertificates()
        self.host = host
        self.port = 0
        self.account_id = account_id
        self.auth_attempts: list[AuthAttempt] = []
        self.messages: list[ReceivedMessage] = []
        self._lock = threading.Lock()
        self._controller: _Controller | None = None
        self.reset()
        self.propagation_delay = propagation_delay

    def reset(self) -> None:
        """Every switch off, the default identity (example.com) verified, no records."""
        self.propagation_delay = 0.0
        self.propagation_flaps = 0.0
        self.refuse_all = False
        self.excluded_mechanisms: tuple[str, ...] = ()
        self.verified_identities: set[str] = {"example.com"}
        self.sandbox = False
        self.sending_paused = False
        self.from_addresses: dict[str, set[str]] = {}
        self.throttle_next = 0
        self._flap_counts: dict[str, int] = {}
        with self._lock:
            self.auth_attempts.clear()
            self.messages.clear()

    @property
    def host_name(self) -> str:
        """The SES SMTP host name of this server's region (what Kion's settings name)."""
        return default_smtp_host(self.region)

    @property
    def ca_pem(self) -> str:
        """The PEM CA certificate that clients must trust."""
        return self.certificates.ca_pem

    @property
    def messages_received(self) -> int:
        """How many messages SES accepted after DATA."""
        with self._lock:
            return sum(1 for message in self.messages if message.accepted)

    def accepted_logins(self, access_key_id: str | None = None) -> int:
        """How many AUTH attempts were accepted (for one access key id, or for all)."""
        with self._lock:
            return sum(
                1
                for attempt in self.auth_attempts
                if attempt.accepted and access_key_id in (None, attempt.access_key_id)
            )

    def check_credential(self, access_key_id: str, smtp_password: str) -> AuthOutcome:
        """Decide, as SES would now, whether this user name and password authenticate everywhere:
        a key still settling (``propagation_flaps``) counts as propagating, since some SES servers
        refuse it."""
        outcome, age = self._outcome(access_key_id, smtp_password)
        if outcome == "accepted" and self._settling(age):
            return "propagating"
        return outcome

    def _outcome(self, access_key_id: str, smtp_password: str) -> tuple[AuthOutcome, float]:
        if self.refuse_all:
            return "refuse_all", 0.0
        record = self.key_lookup(access_key_id)
        if record is None:
            return "unknown_key", 0.0
        if not record.active:
            return "inactive_key", 0.0
        expected = derive_smtp_password(record.secret_access_key, self.region)
        if not hmac.compare_digest(expected.encode("utf-8"), smtp_password.encode("utf-8")):
            return "wrong_password", 0.0
        age = self.clock() - record.created_at.timestamp()
        if self.propagation_delay > 0 and age < self.propagation_delay:
            return "propagating", age
        return "accepted", age

    def judge_message(self, access_key_id: str, sender: str, recipients: tuple[str, ...]) -> str:
        """SES's answer to a message sent after AUTH as ``access_key_id``; the message is
        recorded with it."""
        record = self.key_lookup(access_key_id)
        user_name = record.user_name if record else ""
        allowed_senders = self.from_addresses.get(user_name)
        unverified = [a for a in recipients if self.sandbox and not self._verified(a)]
        if self.sending_paused:
            reply = SENDING_PAUSED
        elif not self._verified(sender):
            reply = NOT_VERIFIED.format(region=self.region.upper(), address=sender)
        elif allowed_senders is not None and sender.lower() not in allowed_senders:
            reply = ACCESS_DENIED.format(
                account=self.account_id, user=user_name, region=self.region, address=sender
            )
        elif unverified:
            reply = NOT_VERIFIED.format(region=self.region.upper(), address=unverified[0])
        elif self.throttle_next > 0:
            self.throttle_next -= 1
            reply = THROTTLED
        else:
            reply = f"250 Ok {len(self.messages) + 1:016x}-ses-loopback"
        with self._lock:
            self.messages.append(
                ReceivedMessage(self.region, access_key_id, sender, recipients, reply)
            )
        return reply

    def _settling(self, age: float) -> bool:
        return self.propagation_flaps > 0 and age < self.propagation_delay + self.propagation_flaps

    def _verified(self, address: str) -> bool:
        domain = address.rsplit("@", 1)[-1].lower()
        if domain == MAILBOX_SIMULATOR_DOMAIN:
            return True
        identities = {identity.lower() for identity in self.verified_identities}
        return address.lower() in identities or domain in identities

    def _check(self, mechanism: str, login: bytes, password: bytes) -> bool:
        access_key_id = login.decode("utf-8", errors="replace")
        outcome, age = self._outcome(access_key_id, password.decode("utf-8", errors="replace"))
        if outcome == "accepted" and self._settling(age):
            turn = self._flap_counts.get(access_key_id, 0)
            self._flap_counts[access_key_id] = turn + 1
            outcome = "propagating" if turn % 2 else "accepted"
        attempt = AuthAttempt(
            access_key_id, outcome == "accepted", outcome, mechanism, self.clock()
        )
        with self._lock:
            self.auth_attempts.append(attempt)
        return attempt.accepted

    def _make_smtp(self, handler: _MailJudge) -> SMTP:
        return _SesSmtp(
            handler,
            check=self._check,
            implicit_tls=self.implicit_tls,
            hostname=self.host_name,
            ident="SimpleEmailService-loopback",
            tls_context=None if self.implicit_tls else self.certificates.server_context,
            require_starttls=not self.implicit_tls,
            auth_required=True,
            auth_require_tls=True,
            auth_exclude_mechanism=list(self.excluded_mechanisms),
        )

    def start(self) -> SesSmtpServer:
        """Bind a free port on ``host`` (after a stop, the port it had) and serve in a
        background thread."""
        if self._controller is not None:
            raise RuntimeError("the SMTP server is already running")
        listener = _bind_loopback(self.host, self.port)
        self.port = listener.getsockname()[1]
        self._controller = _Controller(
            _MailJudge(self),
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


class SesSmtpRegions:
    """SES SMTP in several regions at once: one :class:`SesSmtpServer` per region, each on its
    own loopback port and known by its region's host name, sharing certificates and key lookup."""

    def __init__(self, regions: tuple[str, ...], **options: Any) -> None:
        self.servers = {region: SesSmtpServer(region=region, **options) for region in regions}

    def server_for(self, host: str) -> SesSmtpServer | None:
        """The server that answers at SMTP host name ``host`` (the public, FIPS or VPC endpoint
        name of its region), or None where no server answers."""
        ses_host = ses_smtp_host(host)
        if ses_host is not None:
            return self.servers.get(ses_host.region)
        return None

    @property
    def messages(self) -> list[ReceivedMessage]:
        return [message for server in self.servers.values() for message in server.messages]

    def reset(self) -> None:
        for server in self.servers.values():
            server.reset()

    def start(self) -> SesSmtpRegions:
        for server in self.servers.values():
            server.start()
        return self

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()

    def __enter__(self) -> SesSmtpRegions:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class SilentSmtpServer:
    """Accepts TCP connections on loopback and never sends a byte: an SMTP server that hangs, or
    with ``hang_up`` one that closes each connection before its greeting."""

    def __init__(self, host: str = "127.0.0.1", *, hang_up: bool = False) -> None:
        self.host = host
        self.hang_up = hang_up
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
            self.connections += 1
            if self.hang_up:
                connection.close()
            else:
                self._open.append(connection)

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
