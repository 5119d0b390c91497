"""Colour on a terminal: the marks the commands print (✓ ✗ ? !) and ``error:`` in the colours a
reader expects, only when the stream is a terminal and neither ``NO_COLOR`` (no-color.org) nor
``TERM=dumb`` asks for none. Output to a file or a pipe stays plain text."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from typing import TextIO

_RESET = "\033[0m"
_COLOURS = {
    "✓": "\033[32m",  # green: holds, done
    "✗": "\033[31m",  # red: failed
    "!": "\033[31m",
    "?": "\033[33m",  # yellow: unchecked, unknown
    "…": "\033[33m",
    "error:": "\033[1;31m",
}


def colour_wanted(stream: TextIO, environ: Mapping[str, str] = os.environ) -> bool:
    if "NO_COLOR" in environ or environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def coloured(text: str) -> str:
    """``text`` with each mark that opens a line (after its indent) in its colour."""
    lines = []
    for line in text.split("\n"):
        body = line.lstrip(" ")
        for mark, colour in _COLOURS.items():
            if body.startswith(mark + " ") or body == mark:
                line = line[: len(line) - len(body)] + colour + mark + _RESET + body[len(mark) :]
                break
        lines.append(line)
    return "\n".join(lines)


class ColourStream(io.TextIOBase):
    """A text stream that passes writes on to ``target`` with their marks coloured."""

    def __init__(self, target: TextIO) -> None:
        self._target = target

    def write(self, text: str) -> int:
        self._target.write(coloured(text))
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target, "encoding", "utf-8")
