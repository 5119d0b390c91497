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
DELETED_EARLY = "deleted_early"  # keys that served Kion deleted before their grace window passed
ADOPTED_OUTRIGHT = "adopted_outright"  # adopted keys deleted without being retired first
WATCH_DELETIONS = "watch_deletions"  # retired keys the watch deleted once their window passed
RETIREMENT_SCENARIO = "retirement_scenario"  # 1 per fault scenario of the watch's delete
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
# Kion keys one deployment's renewal deleted that another deployment made or held
KION_KEY_OTHER_DEPLOYMENT_DELETED = "kion_key_other_deployment_deleted"
ROLLBACK_SCENARIO = "rollback_scenario"  # 1 per fault scenario of the rollback
ROLLBACK_UNWORKING = "rollback_unworking"  # 1 when a rollback left Kion on a refused credential
CROSS_ACCOUNT_SCENARIO = "cross_account_scenario"  # 1 per fault scenario at AssumeRole
CROSS_ACCOUNT_CONVERGED = "cross_account_converged"  # 1 when that scenario converged
# IAM keys created, changed or deleted in an account that is not the installation's
KEYS_TOUCHED_ELSEWHERE = "keys_touched_elsewhere"
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
            ("keys deleted before their grace window", totals[DELETED_EARLY], "goal 0"),
            ("adopted keys deleted outright", totals[ADOPTED_OUTRIGHT], "goal 0"),
            ("  retired keys the watch deleted", totals[WATCH_DELETIONS], "after their window"),
            ("  faults at the watch's delete", totals[RETIREMENT_SCENARIO], ""),
            ("secret leaks", totals[LEAKS], f"goal 0; {self.tests} tests scanned"),
            ("bad-input kinds", len(self.bad_inputs), "goal >= 20"),
            ("concurrent-trigger cases", len(self.concurrent), ""),
            ("configuration-mismatch kinds", len(self.mismatches), ""),
            ("race scenarios run", totals[RACE], ""),
            ("rollback scenarios run", totals[ROLLBACK_SCENARIO], "goal >= 50, faults included"),
            (
                "rollbacks that left Kion without a working credential",
                totals[ROLLBACK_UNWORKING],
                "goal 0",
            ),
            ("failed tests", len(self.failed), "goal 0"),
        ]
        return [
            *(f"{name:<54}{value:>7}   {note}".rstrip() for name, value, note in rows),
            f"Kion API key rotation: fault scenarios run {totals[KION_KEY_SCENARIO]}, converged "
            f"{totals[KION_KEY_CONVERGED]}, moments without a working Kion API key "
            f"{totals[KION_KEY_UNWORKING]}, Kion keys deleted while held "
            f"{totals[KION_KEY_DELETED_HELD]}",
            f"Kion keys of another deployment deleted {totals[KION_KEY_OTHER_DEPLOYMENT_DELETED]}",
            f"Installations in another account: cross-account fault scenarios run "
            f"{totals[CROSS_ACCOUNT_SCENARIO]}, converged {totals[CROSS_ACCOUNT_CONVERGED]}, "
            f"keys touched in an account not the installation's {totals[KEYS_TOUCHED_ELSEWHERE]}",
            # "watch at N installations: ...", by N
            *sorted(self.watch_at_scale, key=lambda line: int(line.split()[2])),
        ]

    def print(self, terminal: pytest.TerminalReporter) -> None:
        terminal.write_sep("=", "safety figures")
        for line in self.lines():
            terminal.write_line(line)
