"""Loopback stand-ins for AWS, Amazon SES SMTP and the Kion API, shared by the tests and the demo
(the ``[local]`` extra: moto, aiosmtpd, trustme).

Every server here listens on 127.0.0.1 only, on a free port chosen when it starts, and speaks TLS
with certificates from a throwaway CA (see :mod:`ses_smtp_rotator.local.tls`). The modules beside
the public names: ``rotation_service`` (Secrets Manager's rotation service, step by step),
``moto_rotation``, ``moto_lambda`` and ``lambda_runtime`` (running the functions against moto),
``cloudwatch_logs`` (their log lines in moto), ``kion_app_api_keys`` (the stand-in's keys),
``moto_onboarding`` (the SES v2 and IAM calls of ``adopt`` and ``check`` that moto lacks) and
``installation`` (an installation provisioned on moto as the stack does).

Public names: ``KionStandIn`` and ``KionRequest`` (Kion's API), ``SesSmtpServer``,
``SilentSmtpServer``, ``SesSmtpRegions``, ``AuthAttempt``, ``KeyRecord``, ``ReceivedMessage`` and
``moto_key_lookup`` (SES SMTP), ``LoopbackCertificates`` (the throwaway CA).
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
