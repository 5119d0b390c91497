"""SES SMTP: prove that SES accepts a credential, by SMTP AUTH alone (no mail is sent), and hold
the proof to several consecutive accepted logins, since SES SMTP is many servers behind one name."""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

from ses_smtp_rotator.functions.errors import SesAuthError, SmtpConnectionError, SmtpTlsError
from ses_smtp_rotator.functions.installation_secret import InstallationSecret
from ses_smtp_rotator.functions.services.ses_hosts import ses_smtp_host

# Lambda blocks outbound port 25; the credential does not depend on the port, so an SES endpoint
# configured on 25 is proven on 587 (STARTTLS) instead.
BLOCKED_PORT, LAMBDA_PORT = 25, 587
_SPAN_SLACK = 0.001


def dialled_port(smtp_host: str, smtp_port: int) -> int:
    """The port the function connects to for an installation's ``smtp_host`` and ``smtp_port``:
    the configured one, except 587 for an SES host configured on 25. The stack opens its
    security groups and endpoint rules from this same answer."""
    if smtp_port == BLOCKED_PORT and ses_smtp_host(smtp_host) is not None:
        return LAMBDA_PORT
    return smtp_port


@dataclass(frozen=True)
class SmtpEndpoint:
    host: str
    port: int
    implicit_tls: bool
    ca_pem: str | None = field(default=None, repr=False)
    timeout: float = 10.0

    @classmethod
    def of(cls, secret: InstallationSecret, timeout: float) -> SmtpEndpoint:
        """Where the function proves the credential: the secret's smtp_host and port, except
        that an SES endpoint on port 25 is proven on 587, which Lambda may reach."""
        port = dialled_port(secret.smtp_host, secret.smtp_port)
        implicit_tls = secret.implicit_tls if port == secret.smtp_port else False
        return cls(secret.smtp_host, port, implicit_tls, secret.smtp_ca_bundle, timeout)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def _tls_context(endpoint: SmtpEndpoint) -> ssl.SSLContext:
    return _context_for(endpoint.ca_pem)


@lru_cache(maxsize=8)
def _context_for(ca_pem: str | None) -> ssl.SSLContext:
    """Made once per CA bundle and shared: loading the system's CA store takes some 20 ms, which
    every SMTP login would otherwise pay again."""
    context = ssl.create_default_context()
    if ca_pem:
        context.load_verify_locations(cadata=ca_pem)
    return context


def try_login(endpoint: SmtpEndpoint, username: str, password: str) -> bool:
    """SMTP AUTH with the credential: True when SES accepts it, False when it refuses it (5xx/4xx).

    Raises SmtpTlsError or SmtpConnectionError when the question cannot be asked at all.
    """
    with smtp_session(endpoint) as session:
        try:
            authenticate(session, username, password)
        except smtplib.SMTPAuthenticationError:
            return False
        return True


@contextmanager
def smtp_session(endpoint: SmtpEndpoint) -> Iterator[smtplib.SMTP]:
    """An SMTP conversation with ``endpoint``, TLS set up (implicit or STARTTLS), not yet
    authenticated. Failures to talk at all become SmtpTlsError or SmtpConnectionError; SMTP
    answers the caller asks about (AUTH, MAIL, DATA) reach the caller as smtplib raises them."""
    context = _tls_context(endpoint)
    try:
        if endpoint.implicit_tls:
            session: smtplib.SMTP = smtplib.SMTP_SSL(
                endpoint.host, endpoint.port, timeout=endpoint.timeout, context=context
            )
        else:
            session = smtplib.SMTP(endpoint.host, endpoint.port, timeout=endpoint.timeout)
        with session:
            if not endpoint.implicit_tls:
                session.starttls(context=context)
            yield session
    except ssl.SSLCertVerificationError as error:
        raise SmtpTlsError(
            f"The SMTP server at {endpoint} presented a certificate that is not trusted "
            f"({error.verify_message}).",
            "Check smtp_host: use the SES SMTP endpoint name of the region (or a VPC endpoint "
            "name the certificate covers); for a relay with a private CA set smtp_ca_bundle.",
        ) from None
    except ssl.SSLError as error:
        raise SmtpTlsError(
            f"TLS with the SMTP server at {endpoint} failed ({error.reason}).",
            "Check smtp_port: 465 and 2465 use TLS from the start, 25, 587 and 2587 use STARTTLS.",
        ) from None
    except smtplib.SMTPNotSupportedError:
        raise SmtpConnectionError(
            f"The SMTP server at {endpoint} does not offer STARTTLS, or AUTH with PLAIN or LOGIN.",
            "Point smtp_host and smtp_port at the SES SMTP endpoint of ses_region.",
        ) from None
    except (
        smtplib.SMTPAuthenticationError,
        smtplib.SMTPSenderRefused,
        smtplib.SMTPRecipientsRefused,
        smtplib.SMTPDataError,
    ):
        raise  # SES's answer to the caller's question, for the caller to interpret
    except (OSError, smtplib.SMTPException) as error:
        raise SmtpConnectionError(
            f"Could not talk to the SMTP server at {endpoint} ({_describe(error)}).",
            "Check that the function can reach it: security group egress on the SMTP port, the "
            "SES SMTP VPC endpoint or a NAT route, and smtp_host/smtp_port in the secret.",
        ) from None


def authenticate(session: smtplib.SMTP, username: str, password: str) -> None:
    """One AUTH exchange: PLAIN where offered (SES offers it), else LOGIN.

    smtplib's login() would try a second mechanism after a 535, doubling every refused attempt.
    """
    session.ehlo_or_helo_if_needed()
    offered = session.esmtp_features.get("auth", "").upper().split()
    session.user, session.password = username, password
    if "PLAIN" in offered:
        session.auth("PLAIN", session.auth_plain)
    elif "LOGIN" in offered:
        session.auth("LOGIN", session.auth_login)
    else:
        raise smtplib.SMTPNotSupportedError  # named by smtp_session, with the endpoint


def _describe(error: BaseException) -> str:
    # smtplib reports a reply that never came as a disconnect whose text says "timed out".
    if isinstance(error, TimeoutError) or "timed out" in str(error):
        return "timed out"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, smtplib.SMTPResponseException):
        return f"SMTP {error.smtp_code}"
    return type(error).__name__


@dataclass
class SesAcceptanceWait:
    """Waits, bounded, until SES accepts a new credential ``required_logins`` times in a row
    over at least ``min_span`` seconds.

    A refused login is tried again ``retry_interval`` seconds after it began: SES sees at most
    one refused login a second, and the first login after the key starts working comes at most
    one interval after it does (a backoff that grows would land ever later past that moment).
    While a new key propagates, one SES server can accept it and the next refuse it: a refusal
    starts the count again. A connection that fails (not TLS) is retried within the bound.
    """

    endpoint: SmtpEndpoint
    timeout: float
    required_logins: int = 1
    min_span: float = 0.0
    retry_interval: float = 1.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    logins: int = 0
    _accepted_once: bool = False

    def until_accepted(self, username: str, password: str) -> float:
        """Return the seconds waited; raise SesAuthError (or the last SmtpConnectionError) when
        the bound passes first."""
        started = self.clock()
        deadline = started + self.timeout
        accepted_in_row, row_started = 0, started
        while True:
            self.logins += 1
            login_began = self.clock()
            connection_error: SmtpConnectionError | None = None
            try:
                accepted = try_login(self.endpoint, username, password)
            except SmtpConnectionError as error:
                accepted, connection_error = False, error
            now = self.clock()
            if accepted:
                self._accepted_once = True
                row_started = now if accepted_in_row == 0 else row_started
                accepted_in_row += 1
                if self._proven(accepted_in_row, now - row_started):
                    return now - started
                pause = self.min_span / max(1, self.required_logins - 1)
            else:
                accepted_in_row = 0
                pause = max(0.0, login_began + self.retry_interval - now)
            remaining = deadline - now
            if remaining <= 0:
                raise connection_error or self._refused(username)
            self.sleep(min(pause, remaining))

    def _proven(self, accepted_in_row: int, span: float) -> bool:
        # The pauses add up to the span exactly; a millisecond's slack keeps float rounding of
        # the clock from asking for one more login than the pauses were made for.
        return accepted_in_row >= self.required_logins and (
            self.required_logins == 1 or span >= self.min_span - _SPAN_SLACK
        )

    def _refused(self, username: str) -> SesAuthError:
        if self._accepted_once:
            return SesAuthError(
                f"SES SMTP at {self.endpoint} accepted access key {username}, but not "
                f"{self.required_logins} times in a row over {self.min_span:g} s within "
                f"{self.timeout:.0f} s: the key is still propagating.",
                "Secrets Manager retries the rotation; if keys propagate slowly in this account, "
                "raise SES_ACCEPT_TIMEOUT_SECONDS.",
            )
        return SesAuthError(
            f"SES SMTP at {self.endpoint} still refuses access key {username} after "
            f"{self.timeout:.0f} s (535 Authentication Credentials Invalid).",
            "Check that the IAM user may call ses:SendRawEmail, that ses_region is the "
            "region of smtp_host, and that SES is out of any account-level suspension; "
            "a raise of SES_ACCEPT_TIMEOUT_SECONDS helps if keys propagate slowly.",
        )
