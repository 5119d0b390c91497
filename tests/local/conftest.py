"""Fixtures for the tests of the loopback stand-ins themselves."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
import urllib3
from moto import mock_aws

from ses_smtp_rotator.local import KionStandIn, LoopbackCertificates

REGION = "us-east-1"
USER = "kion-smtp"


@pytest.fixture(scope="session")
def certificates() -> LoopbackCertificates:
    """One throwaway CA and loopback server certificate for the whole session."""
    return LoopbackCertificates()


@pytest.fixture
def iam(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An IAM client on moto, in-process, with the SMTP user created."""
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        client = boto3.client("iam", region_name=REGION)
        client.create_user(UserName=USER)
        yield client


@pytest.fixture
def access_key(iam: Any) -> dict[str, str]:
    """A fresh, active access key of the SMTP user."""
    return iam.create_access_key(UserName=USER)["AccessKey"]


@pytest.fixture
def kion(certificates: LoopbackCertificates) -> Iterator[KionStandIn]:
    with KionStandIn(certificates=certificates) as server:
        yield server


HttpsPool = Callable[..., urllib3.PoolManager]


@pytest.fixture
def https_pool() -> HttpsPool:
    """Makes urllib3 pools that trust only the given CA PEM and never retry."""

    def make(ca_pem: str, timeout: float = 5.0) -> urllib3.PoolManager:
        context = ssl.create_default_context(cadata=ca_pem)
        return urllib3.PoolManager(ssl_context=context, retries=False, timeout=timeout)

    return make


@pytest.fixture
def http(https_pool: HttpsPool, certificates: LoopbackCertificates) -> urllib3.PoolManager:
    """A pool that trusts the session CA."""
    return https_pool(certificates.ca_pem)
