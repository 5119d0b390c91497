"""Derive the Amazon SES SMTP password from an IAM secret access key.

The password is a Signature Version 4 signing key for the ``SendRawEmail`` action, scoped to one
SES region and a fixed date, with a version byte in front. It is region-specific: the same key gives
a different password in every region.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

_SIGNING_DATE = "11111111"
_SERVICE = "ses"
_TERMINAL = "aws4_request"
_MESSAGE = "SendRawEmail"
_VERSION = b"\x04"


def _sign(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def derive_smtp_password(secret_access_key: str, region: str) -> str:
    """Return the SES SMTP password for ``secret_access_key`` in the SES region ``region``."""
    signature = _sign(("AWS4" + secret_access_key).encode("utf-8"), _SIGNING_DATE)
    for part in (region, _SERVICE, _TERMINAL, _MESSAGE):
        signature = _sign(signature, part)
    return base64.b64encode(_VERSION + signature).decode("ascii")


def is_smtp_password(text: str) -> bool:
    """True when ``text`` has the form of an SES SMTP password (version byte and signature).

    Kion masks the password it shows in several ways; a value of any other form is a mask.
    """
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        return False
    return len(raw) == 1 + hashlib.sha256().digest_size and raw[:1] == _VERSION
