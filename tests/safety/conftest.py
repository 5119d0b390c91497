"""Fixtures of the safety suite, the secret scan that runs around every one of its tests, and the
figures it prints at the end of the run (``make safety``, and ``make test``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
from fault_injection import FaultInjector
from safety_figures import SafetyFigures
from safety_harness import (
    EMPTY_TRUST_STORE,
    SafetyRun,
    VirtualClock,
    build_world,
    ses_on_virtual_time,
    virtual_time,
)
from secret_scan import OutputCapture, SecretLedger, SecretScan
from xray_capture import CapturedTraces, tracing_on

from ses_smtp_rotator.functions.smtp_rotation.send_proof import SIMULATOR
from ses_smtp_rotator.functions.telemetry import SERVICE
from ses_smtp_rotator.local.kion_server import KionStandIn
from ses_smtp_rotator.local.rotation_service import LocalRotationService
from ses_smtp_rotator.local.smtp_server import SesSmtpRegions, SesSmtpServer, SilentSmtpServer

# Short enough that an SMTP server that never answers costs little real time, long enough that
# a loopback server thread kept waiting by a busy machine is not taken for one.
SMTP_TIMEOUT_SECONDS = "2"

FIGURES = SafetyFigures()


@pytest.fixture
def outputs() -> OutputCapture:
    """What the function wrote during the test; the secret scan reads it at teardown."""
    return OutputCapture()


@pytest.fixture
def xray_traces() -> CapturedTraces:
    """The X-Ray segments the function's tracer sent during the test."""
    return CapturedTraces()


@pytest.fixture
def secret_scan(
    smtp: SesSmtpServer,
    outputs: OutputCapture,
    xray_traces: CapturedTraces,
    capfd: pytest.CaptureFixture[str],
) -> SecretScan:
    """The scan of all output (file descriptors, logs, X-Ray, errors) for the test's secrets."""
    return SecretScan(SecretLedger(region=smtp.region), outputs, xray_traces, capfd)


@pytest.fixture(autouse=True)
def no_secret_in_any_output(
    aws: None,
    kion: KionStandIn,
    smtp: SesSmtpServer,
    secret_scan: SecretScan,
    monkeypatch: pytest.MonkeyPatch,
    record_property: Callable[[str, object], None],
) -> Iterator[None]:
    """Invariant 3, around every safety test: scan all output for every secret the test made,
    with the function logging at its most verbose level and tracing to X-Ray."""
    function_logger = logging.getLogger(SERVICE)
    monkeypatch.setattr(function_logger, "level", function_logger.level)  # restored after
    function_logger.setLevel(logging.DEBUG)
    ledger, outputs = secret_scan.ledger, secret_scan.outputs
    for api_key in kion.api_keys.values():
        ledger.add("Kion API key", api_key)
    with (
        ledger.watching_iam(monkeypatch),
        ledger.watching_kion(monkeypatch),
        outputs.capturing_logs(),
        tracing_on(monkeypatch, secret_scan.traces),
    ):
        yield
    leaks = secret_scan.leaks()
    record_property("leaks", len(leaks))
    record_property("output_chars", sum(len(text) for _, text in outputs.texts))
    assert not leaks, f"invariant 3 broken: {leaks}"
    elsewhere = [m for m in smtp.messages if m.recipients != (SIMULATOR,)]
    assert not elsewhere, f"mail went to another recipient than the simulator: {elsewhere}"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[VirtualClock]:
    """Virtual time for the SES acceptance wait: no step really waits."""
    with virtual_time(monkeypatch, VirtualClock()) as virtual:
        yield virtual


@pytest.fixture(scope="session")
def silent_smtp() -> Iterator[SilentSmtpServer]:
    """An SMTP server that accepts connections and never answers."""
    with SilentSmtpServer() as server:
        yield server


@pytest.fixture
def injector(
    kion: KionStandIn, smtp: SesSmtpServer, silent_smtp: SilentSmtpServer
) -> Iterator[FaultInjector]:
    """Every external call of the function counted, and failed where a test plans it."""
    with FaultInjector(kion, smtp, silent_smtp).installed() as installed:
        yield installed


@pytest.fixture
def make_run(
    kion: KionStandIn,
    smtp: SesSmtpServer,
    rotation_service: LocalRotationService,
    injector: FaultInjector,
    clock: VirtualClock,
    outputs: OutputCapture,
    monkeypatch: pytest.MonkeyPatch,
    other_regions: SesSmtpRegions,
) -> Iterator[Callable[[str], SafetyRun]]:
    """``make_run(variant)``: an installation (see safety_harness.VARIANTS) under the checks,
    with SES taking a (virtual) second to accept each new key."""
    monkeypatch.setenv("SMTP_TIMEOUT_SECONDS", SMTP_TIMEOUT_SECONDS)
    for name, value in EMPTY_TRUST_STORE.items():
        monkeypatch.setenv(name, value)
    ses_on_virtual_time(smtp, injector, clock, monkeypatch)
    runs: list[SafetyRun] = []

    def make(variant: str) -> SafetyRun:
        world = build_world(variant, kion, smtp, rotation_service, name=f"kion{len(runs)}")
        world.other_regions = other_regions  # SES in other regions, where Kion may send
        runs.append(SafetyRun(world, injector))
        return runs[-1]

    yield make
    for run in runs:
        for failure in run.failures:
            outputs.add_error(f"{failure.step} error", failure.error)


# -- figures ------------------------------------------------------------------------------------


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "tests/safety/" in report.nodeid.replace("\\", "/"):
        FIGURES.add(report)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES.tests:
        FIGURES.print(terminalreporter)
