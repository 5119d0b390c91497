"""Exit codes of ``ses-smtp-rotator``, the same for every command so scripts can rely on them.

A monitor treats 0 and 3 as healthy and everything else as a page: ``status`` exits 1 whenever a
rotation would fail now, and 3 only for a rotation the function is still working on.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable

EXIT_OK = 0
"""Done: the rotation finished (or started, without --wait); every status check holds."""
EXIT_FAILED = 1
"""The rotation failed, or a status check does not hold: a rotation would fail now, or one is
stuck or failed."""
EXIT_USAGE = 2
"""The command line is wrong (argparse's own code), or ``derive`` was given what cannot be a key."""
EXIT_IN_PROGRESS = 3
"""A rotation is in progress and the function worked on it within its timeout (healthy)."""
EXIT_TIMEOUT = 4
"""``rotate --wait`` gave up waiting; the rotation may still be running."""
EXIT_SETUP = 5
"""The question could not be asked: no AWS credentials or region, access denied, the secret does
not exist or is not an installation secret."""
EXIT_UNCHECKED = 6
"""``status``, ``check``, ``adopt --check``: no check failed, but at least one could not be made
from here (marked ?)."""
EXIT_INTERRUPTED = 130
"""Stopped with Ctrl-C."""

# From best to worst: the code a fleet command exits with is the worst of its installations'.
_SEVERITY = (
    EXIT_OK,
    EXIT_IN_PROGRESS,
    EXIT_UNCHECKED,
    EXIT_TIMEOUT,
    EXIT_SETUP,
    EXIT_FAILED,
    EXIT_USAGE,
    EXIT_INTERRUPTED,
)

EPILOG = """exit codes:
  0    done: the rotation finished (or started, without --wait); every status check holds
  1    a rotation failed, would fail now, or is stuck (idle longer than the function timeout)
  2    bad command line (derive: what was given cannot be a secret access key)
  3    a rotation is in progress and the function worked on it within its timeout
  4    --wait gave up waiting (the rotation may still be running)
  5    could not ask: AWS credentials, region, permissions, or the secret is missing or not an
       installation secret
  6    status, check, adopt --check: nothing failed, but some checks could not be made from
       here (marked ?)
  130  interrupted (Ctrl-C); whatever was started in AWS goes on
  Over several installations (--all, names, globs) the worst of theirs, from best to worst
  0, 3, 6, 4, 5, 1. A monitor treats 0 and 3 as healthy.
"""

# The exit codes of adopt and check, whose question is whether the first rotation can succeed.
CHECK_EPILOG = """exit codes:
  0    every check passed: the first rotation can succeed
  1    a check failed (FAIL): the first rotation would fail, or Kion's mail would; or Kion's
       settings cannot become an installation
  2    bad command line
  5    could not ask: AWS credentials, region, permissions, or the secret is missing or not an
       installation secret
  6    nothing failed, but some checks could not be made from here (marked ?)
  130  interrupted (Ctrl-C)
"""


_SEVERAL = (
    "  Over several installations (--all, names, globs) the worst of theirs, from best to worst\n"
    "  0, 3, 6, 4, 5, 1."
)
_SETUP = (
    "could not ask: AWS credentials, region, permissions, or the secret is missing or not an "
    "installation secret"
)
# What each code means for each command (the codes a command never returns are left out).
_PER_COMMAND: dict[str, tuple[tuple[int, str], ...]] = {
    "derive": (
        (EXIT_OK, "the password was printed"),
        (EXIT_USAGE, "bad command line, or what was given cannot be a secret access key"),
    ),
    "list": (
        (EXIT_OK, "the installations were listed"),
        (EXIT_USAGE, "bad command line"),
        (EXIT_SETUP, "could not ask: AWS credentials, region, permissions, or no installation"),
    ),
    "rotate": (
        (EXIT_OK, "the rotation finished (--wait), started, or (--dry-run) was described"),
        (EXIT_FAILED, "the rotation failed"),
        (EXIT_USAGE, "bad command line, or --all was not confirmed"),
        (EXIT_IN_PROGRESS, "a rotation is already in progress and the function works on it"),
        (EXIT_TIMEOUT, "--wait gave up waiting (the rotation may still be running)"),
        (EXIT_SETUP, _SETUP),
    ),
    "status": (
        (EXIT_OK, "every check holds"),
        (EXIT_FAILED, "a rotation would fail now, or one is stuck or failed"),
        (EXIT_USAGE, "bad command line"),
        (
            EXIT_IN_PROGRESS,
            "a rotation is in progress and the function worked on it within its timeout",
        ),
        (EXIT_SETUP, _SETUP),
        (EXIT_UNCHECKED, "nothing failed, but some checks could not be made from here (marked ?)"),
    ),
    "set-kion-key": (
        (EXIT_OK, "the key was stored (and the first rotation, if run, finished)"),
        (EXIT_FAILED, "Kion refused the key, so it was not stored; or the first rotation failed"),
        (EXIT_USAGE, "bad command line, or no key was given"),
        (EXIT_IN_PROGRESS, "the first rotation is still in progress"),
        (EXIT_TIMEOUT, "waiting for the first rotation gave up (it may still be running)"),
        (EXIT_SETUP, _SETUP),
    ),
    "abandon": (
        (EXIT_OK, "the unfinished rotation was given up, or there was none"),
        (EXIT_USAGE, "bad command line, or the prompt was not confirmed"),
        (EXIT_IN_PROGRESS, "not yet: the function may still be working on it"),
        (EXIT_SETUP, _SETUP),
    ),
    "completion": (
        (EXIT_OK, "the script was printed"),
        (EXIT_USAGE, "bad command line (an unknown shell)"),
    ),
    "history": (
        (EXIT_OK, "the history was listed; the latest rotation and renewal did not fail"),
        (EXIT_FAILED, "the latest rotation or Kion API key renewal failed"),
        (EXIT_USAGE, "bad command line"),
        (EXIT_SETUP, _SETUP),
    ),
}
_FLEET_COMMANDS = frozenset({"rotate", "status"})


def epilog_for(command: str) -> str:
    """The exit codes of ``command``, for its ``--help``."""
    lines = ["exit codes:"]
    for code, meaning in (*_PER_COMMAND[command], (EXIT_INTERRUPTED, "interrupted (Ctrl-C)")):
        lines.extend(_wrapped(f"  {code:<4} ", meaning))
    if command in _FLEET_COMMANDS:
        lines.append(_SEVERAL)
    return "\n".join(lines) + "\n"


def _wrapped(head: str, text: str, width: int = 96) -> list[str]:
    lines, line = [], head
    for word in text.split():
        if len(line) + len(word) + 1 > width and line.strip():
            lines.append(line.rstrip())
            line = " " * len(head)
        line += word + " "
    lines.append(line.rstrip())
    return lines


def worst(codes: Iterable[int]) -> int:
    """The most severe of ``codes`` (EXIT_OK for none)."""
    ranked = [
        (_SEVERITY.index(code) if code in _SEVERITY else len(_SEVERITY), code) for code in codes
    ]
    return max(ranked, default=(0, EXIT_OK))[1]


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, except that the exit code table keeps its layout."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("exit codes"):
            return text
        return super()._fill_text(text, width, indent)
