"""SES SMTP: prove that SES accepts a credential, by SMTP AUTH alone (no mail is sent)."""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from .errors import SesAuthError, SmtpConnectionError, SmtpTlsError
from .settings import InstallationSecret


@dataclass(frozen=True)
class SmtpEndpoint:
    host: str
    port: int
    implicit_tls: bool
    ca_pem: str | None = field(default=None, repr=False)
    timeout: float = 10.0

    @classmethod
    def of(cls, secret: InstallationSecret, timeout: float) -> SmtpEndpoint:
        return cls(
            secret.smtp_host, secret.smtp_port, secret.implicit_tls, secret.smtp_ca_bundle, timeout
        )

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
            try:
                _authenticate(session, username, password)
            except smtplib.SMTPAuthenticationError:
                return False
            return True
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
            f"The SMTP server at {endpoint} does not offer STARTTLS or AUTH.",
            "Point smtp_host and smtp_port at the SES SMTP endpoint of ses_region.",
        ) from None
    except (OSError, smtplib.SMTPException) as error:
        raise SmtpConnectionError(
            f"Could not talk to the SMTP server at {endpoint} ({_describe(error)}).",
            "Check that the function can reach it: security group egress on the SMTP port, the "
            "SES SMTP VPC endpoint or a NAT route, and smtp_host/smtp_port in the secret.",
        ) from None


def _authenticate(session: smtplib.SMTP, username: str, password: str) -> None:
    """One AUTH exchange: PLAIN where offered (SES offers it), else whatever login() picks.

    login() alone would try a second mechanism after a 535, doubling every refused attempt.
    """
    session.ehlo_or_helo_if_needed()
    if "PLAIN" in session.esmtp_features.get("auth", "").upper().split():
        session.user, session.password = username, password
        session.auth("PLAIN", session.auth_plain)
    else:
        session.login(username, password)


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
    """Waits, with bounded exponential backoff, until SES accepts a new credential."""

    endpoint: SmtpEndpoint
    timeout: float
    first_delay: float = 0.5
    factor: float = 1.5
    max_delay: float = 5.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    logins: int = 0

    def until_accepted(self, username: str, password: str) -> float:
        """Return the seconds waited; raise SesAuthError when the bound passes first."""
        started = self.clock()
        deadline = started + self.timeout
        delay = self.first_delay
        while True:
            self.logins += 1
            if try_login(self.endpoint, username, password):
                return self.clock() - started
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise SesAuthError(
                    f"SES SMTP at {self.endpoint} still refuses access key {username} after "
                    f"{self.timeout:.0f} s (535 Authentication Credentials Invalid).",
                    "Check that the IAM user may call ses:SendRawEmail, that ses_region is the "
                    "region of smtp_host, and that SES is out of any account-level suspension; "
                    "a raise of SES_ACCEPT_TIMEOUT_SECONDS helps if keys propagate slowly.",
                )
            self.sleep(min(delay, remaining))
            delay = min(delay * self.factor, self.max_delay)
