"""Print the score of `make mutate` from mutmut's results: killed mutants over all mutants that
ran, for the whole rotation package and for its step logic.

Run in the scratch project, after ``mutmut run``: ``python mutation_score.py`` reads
``mutmut results --all true``; with ``--survivors`` it prints the surviving mutants' names.
Timeouts count as killed (the mutant made a test hang, which the test run reports), "no tests"
as survivors (nothing would notice it).
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

STEP_LOGIC = ("rotation", "handler", "ses_smtp", "kion")
KILLED = frozenset({"killed", "timeout", "caught by type check"})
NOT_RUN = frozenset({"not checked", "skipped", "check was interrupted by user"})


def outcomes(results: str) -> list[tuple[str, str]]:
    """(module, status) of every mutant in mutmut's listing."""
    listed = []
    for line in results.splitlines():
        name, separator, status = line.strip().rpartition(": ")
        if separator and "__mutmut_" in name:
            module = name.split(".x")[0].removeprefix("smtp_rotation.")
            listed.append((module, status.strip()))
    return listed


def score(statuses: list[str]) -> str:
    ran = [status for status in statuses if status not in NOT_RUN]
    killed = sum(status in KILLED for status in ran)
    percent = 100 * killed / len(ran) if ran else 0.0
    return f"{killed}/{len(ran)} killed ({percent:.1f} %)"


def main(argv: list[str]) -> int:
    results = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    if argv == ["--survivors"]:  # the names to run again
        for line in results.splitlines():
            name, _, status = line.strip().rpartition(": ")
            if status.strip() == "survived":
                print(name)
        return 0
    listed = outcomes(results)
    by_module: dict[str, list[str]] = {}
    for module, status in listed:
        by_module.setdefault(module, []).append(status)
    print("mutation score (mutmut)")
    for module, statuses in sorted(by_module.items()):
        print(f"  {module:<16}{score(statuses):>28}   {dict(Counter(statuses))}")
    step_logic = [status for module, status in listed if module in STEP_LOGIC]
    ran = sum(status not in NOT_RUN for status in step_logic)
    print(f"  {'step logic':<16}{score(step_logic):>28}   goal >= 95 %")
    print(f"  {'':<16}{f'{ran} of {len(step_logic)} step-logic mutants ran':>28}")
    print(f"  {'all':<16}{score([status for _, status in listed]):>28}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
