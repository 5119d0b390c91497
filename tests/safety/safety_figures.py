"""The figures of a safety run, summed from what each test records with ``record_property``.

They travel in the test reports, so they add up the same with and without pytest-xdist.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

SCENARIO = "scenario"  # 1 per fault scenario run
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


@dataclass
class SafetyFigures:
    tests: int = 0
    failed: int = 0
    totals: Counter = field(default_factory=Counter)
    bad_inputs: set[str] = field(default_factory=set)
    concurrent: set[str] = field(default_factory=set)
    mismatches: set[str] = field(default_factory=set)

    def add(self, report: pytest.TestReport) -> None:
        """Count one test, from the properties in its teardown report (which holds them all)."""
        self.tests += 1
        properties: list[tuple[str, Any]] = list(report.user_properties)
        if report.failed or any(name == "failed" for name, _ in properties):
            self.failed += 1
        for name, value in properties:
            if name == BAD_INPUT:
                self.bad_inputs.add(str(value))
            elif name == CONCURRENT:
                self.concurrent.add(str(value))
            elif name == CONFIG_MISMATCH:
                self.mismatches.add(str(value))
            elif isinstance(value, int):
                self.totals[name] += value

    def lines(self) -> list[str]:
        totals = self.totals
        rows = [
            ("fault scenarios run", totals[SCENARIO], ""),
            ("  converged", totals[CONVERGED], f"goal {totals[SCENARIO]}"),
            ("  step invocations checked", totals[STEPS], ""),
            ("moments Kion held a refused credential", totals[KION_REFUSED], "goal 0"),
            ("keys deleted while in use", totals[DELETED_IN_USE], "goal 0"),
            ("secret leaks", totals[LEAKS], f"goal 0; {self.tests} tests scanned"),
            ("bad-input kinds", len(self.bad_inputs), "goal >= 20"),
            ("concurrent-trigger cases", len(self.concurrent), ""),
            ("configuration-mismatch kinds", len(self.mismatches), ""),
            ("race scenarios run", totals[RACE], ""),
        ]
        return [
            *(f"{name:<42}{value:>7}   {note}".rstrip() for name, value, note in rows),
            f"Kion API key rotation: fault scenarios run {totals[KION_KEY_SCENARIO]}, converged "
            f"{totals[KION_KEY_CONVERGED]}, moments without a working Kion API key "
            f"{totals[KION_KEY_UNWORKING]}, Kion keys deleted while held "
            f"{totals[KION_KEY_DELETED_HELD]}",
        ]

    def print(self, terminal: pytest.TerminalReporter) -> None:
        terminal.write_sep("=", "safety figures")
        for line in self.lines():
            terminal.write_line(line)
