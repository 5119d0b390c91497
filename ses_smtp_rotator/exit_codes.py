"""Exit codes of ``ses-smtp-rotator``, the same for every command so scripts can rely on them."""

from __future__ import annotations

import argparse

EXIT_OK = 0
"""Done: the rotation finished (or started, without --wait); every status check holds."""
EXIT_FAILED = 1
"""The rotation failed (the function reported an error), or a status check does not hold."""
EXIT_USAGE = 2
"""The command line is wrong (argparse's own code)."""
EXIT_IN_PROGRESS = 3
"""A rotation of the secret is already in progress (AWSPENDING sits apart from AWSCURRENT)."""
EXIT_TIMEOUT = 4
"""``rotate --wait`` gave up waiting; the rotation may still be running."""
EXIT_SETUP = 5
"""The question could not be asked: no AWS credentials or region, access denied, the secret does
not exist or has no rotation function attached."""
EXIT_INTERRUPTED = 130
"""Stopped with Ctrl-C."""

EPILOG = """exit codes:
  0  done: the rotation finished (or started, without --wait); every status check holds
  1  the rotation failed, or a status check does not hold
  2  bad command line
  3  a rotation of the secret is already in progress
  4  --wait gave up waiting (the rotation may still be running)
  5  could not ask: AWS credentials, region, permissions, or the secret is missing or not
     attached to a rotation function
"""


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, except that the exit code table keeps its layout."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("exit codes:"):
            return text
        return super()._fill_text(text, width, indent)
