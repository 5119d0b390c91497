"""The figures of a safety run, summed from what each test records with ``record_property``.

They travel in the test reports, so they add up the same with and without pytest-xdist.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

SCENARIO = "scenario"  # 1 per fault scenario run
FINGERPRINT = "fingerprint"  # a digest of what the scenario did: equal digests, equal scenarios
NO_OP = "no_op"  # 1 when the scenario's faults left the function doing what it did without them
DOUBLE_FAULT = "double_fault"  # 1 per scenario with two faults in one rotation
RECOVERY_ONLY = "recovery_only"  # 1 when a fault struck a call only a recovery makes
CONVERGED = "converged"  # 1 when the scenario ended converged (and the next rotation too)
KION_REFUSED = "kion_refused"  # moments Kion's configured credential was refused by SES
DELETED_IN_USE = "deleted_in_use"  # keys deleted while AWSCURRENT, AWSPENDING or Kion held them
STEPS = "steps"  # step invocations after which the invariants were checked
LEAKS = "leaks"  # secret pieces found in output (recorded by every safety test)
BAD_INPUT = "bad_input"  # the kind of bad input a test covered, when it passed
CONCURRENT = "concurrent"  # the concurrent-trigger case a test covered, when it passed
CONFIG_MISMATCH = "config_mismatch"  # the kind of Kion-endpoint mismatch a test saw refused
RACE = "race"  # 1 per steps-in-flight race scenario run
KION_KEY_SCENARIO = "kion_key_scenario"  # 1 per fault scenario of the Kion API key renewal
KION_KEY_CONVERGED = "kion_key_converged"  # 1 when that scenario converged
KION_KEY_UNWORKING = "kion_key_unworking"  # moments AWSCURRENT's Kion API key did not work
KION_KEY_DELETED_HELD = "kion_key_deleted_held"  # Kion keys deleted while a version held them
WATCH_AT_SCALE = "watch_at_scale"  # the line of one simulated watch over N installations


@dataclass
class SafetyFigures:
    tests: int = 0
    failed: set[str] = field(default_factory=set)  # node ids of tests failed in any phase
    totals: Counter = field(default_factory=Counter)
    bad_inputs: set[str] = field(default_factory=set)
    concurrent: set[str] = field(default_factory=set)
    mismatches: set[str] = field(default_factory=set)
    effective: set[str] = field(default_factory=set)  # fingerprints of effective scenarios
    watch_at_scale: set[str] = field(default_factory=set)

    def add(self, report: pytest.TestReport) -> None:
        """Note a failure in any phase; count the test, and its properties, at its teardown
        report (which holds them all)."""
        if report.failed:
            self.failed.add(report.nodeid)
        if report.when != "teardown":
            return
        self.tests += 1
        properties: list[tuple[str, Any]] = list(report.user_properties)
        recorded = dict(properties)
        if FINGERPRINT in recorded and not recorded.get(NO_OP):
            self.effective.add(str(recorded[FINGERPRINT]))
        for name, value in properties:
            if name == BAD_INPUT:
                self.bad_inputs.add(str(value))
            elif name == CONCURRENT:
                self.concurrent.add(str(value))
            elif name == CONFIG_MISMATCH:
                self.mismatches.add(str(value))
            elif name == WATCH_AT_SCALE:
                self.watch_at_scale.add(str(value))
            elif isinstance(value, int):
                self.totals[name] += value

    def lines(self) -> list[str]:
        totals = self.totals
        rows = [
            ("fault scenarios run", totals[SCENARIO], ""),
            ("  effective fault scenarios", len(self.effective), "each doing what no other does"),
            ("  no-op scenarios", totals[NO_OP], "goal 0"),
            ("  double-fault scenarios", totals[DOUBLE_FAULT], "goal >= 200"),
            ("  faults on recovery-only calls", totals[RECOVERY_ONLY], ""),
            ("  converged", totals[CONVERGED], f"goal {totals[SCENARIO]}"),
            ("  step invocations checked", totals[STEPS], ""),
            ("moments Kion held a refused credential", totals[KION_REFUSED], "goal 0"),
            ("keys deleted while in use", totals[DELETED_IN_USE], "goal 0"),
            ("secret leaks", totals[LEAKS], f"goal 0; {self.tests} tests scanned"),
            ("bad-input kinds", len(self.bad_inputs), "goal >= 20"),
            ("concurrent-trigger cases", len(self.concurrent), ""),
            ("configuration-mismatch kinds", len(self.mismatches), ""),
            ("race scenarios run", totals[RACE], ""),
            ("failed tests", len(self.failed), "goal 0"),
        ]
        return [
            *(f"{name:<42}{value:>7}   {note}".rstrip() for name, value, note in rows),
            f"Kion API key rotation: fault scenarios run {totals[KION_KEY_SCENARIO]}, converged "
            f"{totals[KION_KEY_CONVERGED]}, moments without a working Kion API key "
            f"{totals[KION_KEY_UNWORKING]}, Kion keys deleted while held "
            f"{totals[KION_KEY_DELETED_HELD]}",
            # "watch at N installations: ...", by N
            *sorted(self.watch_at_scale, key=lambda line: int(line.split()[2])),
        ]

    def print(self, terminal: pytest.TerminalReporter) -> None:
        terminal.write_sep("=", "safety figures")
        for line in self.lines():
            terminal.write_line(line)
