"""``ses-smtp-rotator``: the operator's command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import derive_command

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ses-smtp-rotator",
        description="Rotate and inspect the Amazon SES SMTP credential of a Kion installation.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    derive_command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
