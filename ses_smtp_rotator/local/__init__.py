"""Loopback stand-ins for Amazon SES SMTP and the Kion API, shared by the tests and the demo.

Every server here listens on 127.0.0.1 only, on a free port chosen when it starts, and speaks TLS
with certificates from a throwaway CA (see :mod:`ses_smtp_rotator.local.tls`).
"""

from .kion_server import KionRequest, KionStandIn
from .smtp_server import (
    AuthAttempt,
    KeyRecord,
    ReceivedMessage,
    SesSmtpRegions,
    SesSmtpServer,
    SilentSmtpServer,
    moto_key_lookup,
)
from .tls import LoopbackCertificates

__all__ = [
    "AuthAttempt",
    "KeyRecord",
    "KionRequest",
    "KionStandIn",
    "LoopbackCertificates",
    "ReceivedMessage",
    "SesSmtpRegions",
    "SesSmtpServer",
    "SilentSmtpServer",
    "moto_key_lookup",
]
