"""Fixtures: moto for AWS, and the SES SMTP and Kion stand-ins on loopback, shared per session and
reset before every test."""

from __future__ import annotations

import functools
import io
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest

# Configuration of the rotation function and of boto3 for every test: fake credentials, no
# tracing, short timeouts and backoffs so failures are quick (the safety tests inject their own).
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_METRICS_NAMESPACE="SesSmtpRotatorTest",
    POWERTOOLS_LOG_LEVEL="INFO",
    SES_ACCEPT_TIMEOUT_SECONDS="3",
    SES_ACCEPT_MIN_SPAN_SECONDS="0.05",
    SMTP_TIMEOUT_SECONDS="2",
    KION_TIMEOUT_SECONDS="2",
    KION_RETRIES="2",
    KION_RETRY_BACKOFF_SECONDS="0.01",
    KION_API_KEY_CACHE_SECONDS="0",
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

import moto.core.responses
from moto import mock_aws
from rotation_world import RotationWorld

from ses_smtp_rotator.functions.smtp_rotation import handler
from ses_smtp_rotator.functions.smtp_rotation.handler import lambda_handler
from ses_smtp_rotator.functions.telemetry import SERVICE
from ses_smtp_rotator.local.installation import provision_installation
from ses_smtp_rotator.local.kion_server import KionStandIn, default_app_config
from ses_smtp_rotator.local.rotation_service import (
    LocalRotationService,
    in_process_function,
)
from ses_smtp_rotator.local.secret_labels import install_label_moves
from ses_smtp_rotator.local.smtp_server import SesSmtpRegions, SesSmtpServer
from ses_smtp_rotator.local.tls import LoopbackCertificates

# Every moto secret of the suite moves its labels as Secrets Manager does, not as moto 5.x does.
install_label_moves()
# moto lists a response class's methods (inspect.getmembers) for every request it answers, a few
# per cent of the suite's time. The list is remembered per class and per set of names the class
# defines itself, so a double that adds a method (local/moto_onboarding.py) is seen at once.
_moto_method_names = moto.core.responses.method_names_from_class


@functools.cache
def _method_names(clazz: type, own_names: tuple[str, ...]) -> list[str]:
    """``own_names`` only keys the cache: the names ``clazz`` defines itself."""
    return _moto_method_names(clazz)


def _remembered_method_names(clazz: type) -> list[str]:
    return _method_names(clazz, tuple(vars(clazz)))


moto.core.responses.method_names_from_class = _remembered_method_names


@pytest.fixture
def function_logs() -> Iterator[io.StringIO]:
    """The rotation function's log lines, as Powertools formats them (JSON, one per line)."""
    function_logger = logging.getLogger(SERVICE)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(function_logger.handlers[0].formatter)
    function_logger.addHandler(handler)
    yield stream
    function_logger.removeHandler(handler)


@pytest.fixture(scope="session")
def certificates() -> LoopbackCertificates:
    return LoopbackCertificates()


@pytest.fixture(scope="session")
def _smtp_server(certificates):
    with SesSmtpServer(certificates=certificates) as server:
        yield server


@pytest.fixture(scope="session")
def _other_regions(certificates):
    with SesSmtpRegions(
        ("eu-west-1", "us-east-2", "us-gov-west-1"), certificates=certificates
    ) as regions:
        yield regions


@pytest.fixture
def other_regions(_other_regions: SesSmtpRegions) -> SesSmtpRegions:
    """SES SMTP in eu-west-1, us-east-2 and us-gov-west-1, beside ``smtp`` (us-east-1), reset."""
    _other_regions.reset()
    return _other_regions


@pytest.fixture(scope="session")
def _kion_server(certificates):
    with KionStandIn(certificates=certificates) as server:
        yield server


@pytest.fixture
def aws():
    with mock_aws():
        yield


@pytest.fixture
def smtp(_smtp_server: SesSmtpServer) -> SesSmtpServer:
    """The SES SMTP stand-in, with every switch off and no recorded logins or messages."""
    _smtp_server.reset()
    return _smtp_server


@pytest.fixture
def kion(_kion_server: KionStandIn) -> KionStandIn:
    """The Kion stand-in, with default settings, one fresh API key and no faults."""
    _kion_server.clear_faults()
    _kion_server.mask_password = False
    _kion_server.password_mask = ""
    _kion_server.omitted_fields.clear()
    _kion_server.app_config.clear()
    _kion_server.app_config.update(default_app_config())
    _kion_server.api_keys.clear()
    _kion_server.create_api_key()
    _kion_server.request_log.clear()
    return _kion_server


@pytest.fixture
def rotation_service(aws) -> LocalRotationService:
    return LocalRotationService(in_process_function(lambda_handler))


@pytest.fixture
def make_world(aws, kion, smtp, rotation_service):
    """Build an installation: ``adopt=True`` for a fresh deployment whose secret has no
    credential yet, ``False`` for one whose secret already holds the key Kion uses."""

    def make(*, adopt: bool = False, other_regions=None, **options) -> RotationWorld:
        installation = provision_installation(kion, smtp, adopt=adopt, **options)
        world = RotationWorld(installation, kion, smtp, rotation_service)
        world.other_regions = other_regions
        return world

    return make


@pytest.fixture
def world(make_world) -> RotationWorld:
    return make_world()


@pytest.fixture(autouse=True)
def _command_line_output_holds_no_secret(request: pytest.FixtureRequest) -> Iterator[None]:
    """Invariant 3 for the command line: all a tests/cli test printed (what it read back from
    capsys and what it left unread) is scanned for every secret moto and the stand-ins hold, as
    tests/safety/secret_scan.py scans the function's output."""
    if "tests/cli/" not in request.node.nodeid or "capfd" in request.fixturenames:
        yield
        return
    from safety.secret_scan import SecretLedger, find_leaks

    capsys: pytest.CaptureFixture[str] = request.getfixturevalue("capsys")
    printed: list[tuple[str, str]] = []
    read_back = capsys.readouterr

    def readouterr() -> Any:
        captured = read_back()
        printed.append(("command line stdout", captured.out))
        printed.append(("command line stderr", captured.err))
        return captured

    capsys.readouterr = readouterr  # type: ignore[method-assign]
    yield
    readouterr()
    ledger = SecretLedger()
    ledger.gather_moto_iam()
    ledger.gather_secrets_manager()
    leaks = find_leaks(ledger.secrets(), printed)
    assert not leaks, f"invariant 3 broken by the command line: {leaks}"


@pytest.fixture
def warm_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The function keeps the Kion API key it read for an hour, as a warm Lambda would."""
    monkeypatch.setenv("KION_API_KEY_CACHE_SECONDS", "3600")
    handler._kion_api_keys.cache_clear()
    yield
    handler._kion_api_keys.cache_clear()
