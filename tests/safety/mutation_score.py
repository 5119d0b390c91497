"""Print the score of `make mutate` from mutmut's results: killed mutants over all mutants that
ran, per module, for each of the three groups the 95 % goal is about (the rotation's step logic,
the Kion API key renewal, the watch) and for all of them.

Run in the scratch project, after ``mutmut run``: ``python mutation_score.py`` reads
``mutmut results --all true``; with ``--survivors`` it prints the surviving mutants' names.
Timeouts count as killed (the mutant made a test hang, which the test run reports), "no tests"
as survivors (nothing would notice it). Survivors not listed as equivalent in
EQUIVALENT_MUTANTS.md (next to this file) are printed by name.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

# The groups (module prefixes): the rotation's step logic (its steps, the protocol's guards, the
# SES acceptance wait and the Kion client), the Kion API key renewal with its Kion key client,
# and the watch with its health checks.
GROUPS = {
    "step logic": (
        "smtp_rotation.steps",
        "smtp_rotation.handler",
        "rotation_protocol",
        "services.ses_smtp",
        "services.kion_settings",
    ),
    "renewal": ("kion_key_renewal.", "services.kion_keys"),
    "watch": ("watch.",),
}
PACKAGE = "ses_smtp_rotator.functions."
KILLED = frozenset({"killed", "timeout", "caught by type check"})
NOT_RUN = frozenset({"not checked", "skipped", "check was interrupted by user"})
EQUIVALENT_LIST = Path(__file__).with_name("EQUIVALENT_MUTANTS.md")


def module_of(mutmut_name: str) -> str:
    """``services.kion_settings`` for mutmut's
    ``ses_smtp_rotator.functions.services.kion_settings.xǁKionClientǁ_send__mutmut_5``."""
    return mutmut_name.removeprefix(PACKAGE).partition(".x")[0]


def listed_name(mutmut_name: str) -> str:
    """mutmut's ``ses_smtp_rotator.functions.services.kion_settings.xǁKionClientǁ_send__mutmut_5``
    as the list writes it: ``services.kion_settings.KionClient._send__mutmut_5`` (a function:
    ``services.ses_smtp.authenticate__mutmut_9``)."""
    module, _, rest = mutmut_name.removeprefix(PACKAGE).partition(".x")
    function = rest.strip("ǁ").replace("ǁ", ".") if rest.startswith("ǁ") else rest[1:]
    return f"{module}.{function}"


def equivalent_mutants(markdown: str) -> set[str]:
    """The names in the first column of the list's "Equivalent" table; a name written as
    ``__mutmut_N`` belongs to the function of the name before it."""
    section = markdown.partition("## Equivalent")[2].partition("\n## ")[0]
    names: set[str] = set()
    for row in section.splitlines():
        if not row.startswith("| `"):
            continue
        function = ""
        for name in re.findall(r"`([^`]*__mutmut_\d+)`", row.split(" | ")[0]):
            if name.startswith("__mutmut_"):
                name = function + name
            function = name.rpartition("__mutmut_")[0]
            names.add(name)
    return names


def named(results: str) -> list[tuple[str, str]]:
    """(name, status) of every mutant in mutmut's listing."""
    listed = []
    for line in results.splitlines():
        name, separator, status = line.strip().rpartition(": ")
        if separator and "__mutmut_" in name:
            listed.append((name, status.strip()))
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
    mutants = named(results)
    if argv == ["--survivors"]:  # the names to run again
        for name, status in mutants:
            if status == "survived":
                print(name)
        return 0
    listed = [(module_of(name), status) for name, status in mutants]
    by_module: dict[str, list[str]] = {}
    for module, status in listed:
        by_module.setdefault(module, []).append(status)
    print("mutation score (mutmut)")
    for module, statuses in sorted(by_module.items()):
        print(f"  {module:<16}{score(statuses):>28}   {dict(Counter(statuses))}")
    for group, prefixes in GROUPS.items():
        statuses = [status for module, status in listed if module.startswith(prefixes)]
        ran = sum(status not in NOT_RUN for status in statuses)
        print(f"  {group:<16}{score(statuses):>28}   goal >= 95 %")
        print(f"  {'':<16}{f'{ran} of {len(statuses)} mutants ran':>28}")
    print(f"  {'all':<16}{score([status for _, status in listed]):>28}")
    equivalent = equivalent_mutants(EQUIVALENT_LIST.read_text(encoding="utf-8"))
    unexplained = [
        name
        for name, status in mutants
        if status == "survived" and listed_name(name) not in equivalent
    ]
    print(f"  survivors not listed as equivalent in {EQUIVALENT_LIST.name}: {len(unexplained)}")
    for name in unexplained:
        print(f"    {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
