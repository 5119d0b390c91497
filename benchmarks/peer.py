"""P3's peer: serverless-mail's proof of a new SES SMTP key, on the same loopback SES double.

It creates the key, then logs in up to 30 times, 1 s apart, and counts the key as working at
the first accepted login. Measured here: how long after the key was made that login came, how
many logins SES saw, and whether the next login (Kion's first send) was accepted too, which on
an SES that flaps while the key propagates it need not be.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from dataclasses import dataclass
from typing import Any

from ses_smtp_rotator.functions.services.smtp_password import derive_smtp_password

TRIES = 30
PAUSE = 1.0


@dataclass(frozen=True)
class PeerProof:
    seconds: float
    """From the key's creation to its accepted login (or to giving up)."""
    logins: int
    accepted: bool
    next_login_accepted: bool
    """Kion's first send right after the proof: did SES accept the key then too?"""


def prove_like_the_peer(iam: Any, user_name: str, smtp: Any) -> PeerProof:
    """Make a key for ``user_name``, prove it as the peer does against ``smtp`` (the loopback
    SES double), then delete it again."""
    key = iam.create_access_key(UserName=user_name)["AccessKey"]
    made = time.perf_counter()
    username = key["AccessKeyId"]
    password = derive_smtp_password(key["SecretAccessKey"], smtp.region)
    try:
        for tries in range(1, TRIES + 1):
            if _login(smtp, username, password):
                seconds = time.perf_counter() - made
                return PeerProof(seconds, tries, True, _login(smtp, username, password))
            if tries < TRIES:
                time.sleep(PAUSE)
        return PeerProof(time.perf_counter() - made, TRIES, False, False)
    finally:
        iam.delete_access_key(UserName=user_name, AccessKeyId=username)


def _login(smtp: Any, username: str, password: str) -> bool:
    context = ssl.create_default_context(cadata=smtp.ca_pem)
    with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as session:
        session.starttls(context=context)
        session.ehlo()
        session.user, session.password = username, password
        try:
            session.auth("PLAIN", session.auth_plain)  # one AUTH a try, as SES counts them
        except smtplib.SMTPAuthenticationError:
            return False
        return True
