"""What the commands over several installations show: one row per installation, a total, and
the JSON form; and the outcome of one installation they are made from."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from ses_smtp_rotator.cli.exit_codes import (
    EXIT_FAILED,
    EXIT_IN_PROGRESS,
    EXIT_OK,
    EXIT_SETUP,
    EXIT_TIMEOUT,
    EXIT_UNCHECKED,
)
from ses_smtp_rotator.cli.fleet import Installation
from ses_smtp_rotator.cli.installation_status import InstallationStatus
from ses_smtp_rotator.cli.units import span

STATUS_RESULTS = {
    EXIT_OK: "✓ ok",
    EXIT_FAILED: "✗ failing",
    EXIT_IN_PROGRESS: "… rotating",
    EXIT_UNCHECKED: "? unchecked",
    EXIT_SETUP: "! could not ask",
}
ROTATE_RESULTS = {
    EXIT_OK: "✓ done",
    EXIT_FAILED: "✗ failed",
    EXIT_IN_PROGRESS: "… in progress",
    EXIT_TIMEOUT: "… gave up waiting",
    EXIT_SETUP: "! could not ask",
}
_DETAIL_WIDTH = 100


@dataclass(frozen=True)
class Target:
    """One installation to act on: its name, and the secret id to pass to AWS."""

    name: str
    secret_id: str


@dataclass
class Outcome:
    """What one command did for one installation."""

    target: Target
    exit_code: int
    detail: str
    report: dict[str, Any] | None = None
    output: str = ""
    error: dict[str, str] | None = field(default=None)


def status_detail(status: InstallationStatus) -> str:
    for names in (status.problems, status.unchecked):
        if names:
            check = status.checks[names[0]]
            more = f" (+{len(names) - 1} more)" if len(names) > 1 else ""
            return _short(f"{names[0]}: {check.summary}{more}")
    if status.pending is not None:
        return _short(f"rotation to version {status.pending.version_id} in progress")
    return _short(f"next rotation {date(status.next_rotation)}") if status.next_rotation else ""


def rotate_detail(printed: str) -> str:
    lines = [line.strip() for line in printed.splitlines() if line.strip()]
    for mark in ("✗", "✓", "…"):
        marked = [line for line in lines if line.startswith(mark)]
        if marked:
            return _short(marked[-1].lstrip("✗✓… "))
    return _short(lines[0]) if lines else ""


def fleet_document(outcomes: list[Outcome], code: int, args: argparse.Namespace) -> dict[str, Any]:
    results = STATUS_RESULTS if args.command == "status" else ROTATE_RESULTS
    return {
        "deployment": args.deployment,
        "exit_code": code,
        "installations": [
            {
                "installation": outcome.target.name,
                "secret": outcome.target.secret_id,
                "exit_code": outcome.exit_code,
                "result": results.get(outcome.exit_code, str(outcome.exit_code))[2:],
                "detail": outcome.detail,
                **({"status": outcome.report} if args.command == "status" else {}),
                **({"output": outcome.output} if args.command == "rotate" else {}),
                "error": outcome.error,
            }
            for outcome in outcomes
        ],
    }


def installation_document(item: Installation) -> dict[str, Any]:
    return {
        "installation": item.name,
        "secret_arn": item.secret_arn,
        "secret_name": item.secret_name,
        "deployment": item.deployment,
        "stack": item.stack,
        "rotation_function": item.rotation_function,
        "last_rotated": item.last_rotated.isoformat() if item.last_rotated else None,
    }


def table(headings: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO) -> None:
    widths = [
        max(len(str(cell)) for cell in column) for column in zip(headings, *rows, strict=False)
    ]
    for cells in (headings, *rows):
        line = "  ".join(f"{cell!s:<{width}}" for cell, width in zip(cells, widths, strict=True))
        print(line.rstrip(), file=out)


def totals(outcomes: list[Outcome], code: int, results: dict[int, str], out: TextIO) -> None:
    counts: dict[int, int] = {}
    for outcome in outcomes:
        counts[outcome.exit_code] = counts.get(outcome.exit_code, 0) + 1
    parts = [
        f"{count} {results.get(exit_code, str(exit_code))[2:]}"
        for exit_code, count in sorted(counts.items())
    ]
    print(f"{len(outcomes)} installation(s): {', '.join(parts)}. Exit code {code}.", file=out)


def date(value: Any) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def age(days: Any) -> str:
    if not isinstance(days, int | float):
        return "-"
    return span(timedelta(days=days))


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL_WIDTH else text[: _DETAIL_WIDTH - 1] + "…"


def encode_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)
