"""The fault scenarios, generated from the calls a clean rotation makes.

:func:`survey` runs one clean rotation of each starting installation (VARIANTS) on its own loopback
servers and moto, with a :class:`FaultInjector` recording every external call. Every recorded call
site, crossed with every fault kind that applies to it and the ways of going on after that kind of
failure, is one scenario. A call added to the rotation later shows up in the survey, and so in the
scenarios, without a test written for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import pytest
from fault_injection import KILLED_AFTER, KILLED_BEFORE, CallSite, Fault, FaultInjector, fault_kinds
from moto import mock_aws
from safety_harness import (
    CONTINUATIONS,
    EMPTY_TRUST_STORE,
    REINVOKE,
    VARIANTS,
    SafetyRun,
    VirtualClock,
    build_world,
    ses_on_virtual_time,
    virtual_time,
)

from ses_smtp_rotator.local.kion_server import KionStandIn
from ses_smtp_rotator.local.rotation_service import LocalRotationService, in_process_function
from ses_smtp_rotator.local.smtp_server import SesSmtpServer, SilentSmtpServer
from ses_smtp_rotator.local.tls import LoopbackCertificates
from smtp_rotation.handler import lambda_handler


@dataclass(frozen=True)
class Scenario:
    """Start from ``variant``, fail ``fault`` once, then go on by ``continuation``."""

    variant: str
    fault: Fault
    continuation: str

    def __str__(self) -> str:
        return f"{self.variant}-{self.fault}-then-{self.continuation}"


@cache
def survey() -> dict[str, tuple[CallSite, ...]]:
    """The external calls of one clean rotation from each variant, in order."""
    certificates = LoopbackCertificates()
    sites: dict[str, tuple[CallSite, ...]] = {}
    with (
        SesSmtpServer(certificates=certificates) as smtp,
        KionStandIn(certificates=certificates) as kion,
        SilentSmtpServer() as silent,
        mock_aws(),
        pytest.MonkeyPatch.context() as monkeypatch,
        virtual_time(monkeypatch, VirtualClock()) as clock,
        FaultInjector(kion, smtp, silent).installed() as injector,
    ):
        for name, value in EMPTY_TRUST_STORE.items():
            monkeypatch.setenv(name, value)
        ses_on_virtual_time(smtp, injector, clock, monkeypatch)
        service = LocalRotationService(in_process_function(lambda_handler))
        for variant in VARIANTS:
            world = build_world(variant, kion, smtp, service, name=f"survey-{variant}")
            injector.recorded.clear()
            failure = SafetyRun(world, injector).rotate()
            if failure is not None:
                raise RuntimeError(
                    f"the clean rotation from '{variant}' failed at {failure.step}: {failure.error}"
                )
            sites[variant] = tuple(injector.recorded)
    return sites


def continuations(kind: str) -> tuple[str, ...]:
    """How to go on after a fault of ``kind``.

    Every kind is followed by Lambda's own retry of the failed step. The whole-rotation retry and
    the abandon-and-rotate-anew paths are taken after the two kills, which stand for the two
    states a fault can leave (the call made or not), with no clean-up run: the other kinds leave
    one of the same two states, so they would repeat those scenarios.
    """
    return CONTINUATIONS if kind in (KILLED_BEFORE, KILLED_AFTER) else (REINVOKE,)


def fault_scenarios() -> list[Scenario]:
    """Every recorded call site x every fault kind for it x the continuations for that kind."""
    return [
        Scenario(variant, Fault(site, kind), continuation)
        for variant, sites in survey().items()
        for site in sites
        for kind in fault_kinds(site.call)
        for continuation in continuations(kind)
    ]
