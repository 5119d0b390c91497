"""``ses-smtp-rotator``: the operator's command line.

``rotate`` and ``status`` work against real AWS (the default credential chain, ``--profile``,
``--region``) and against the local demo (boto3 honours ``AWS_ENDPOINT_URL``). ``derive`` works
offline.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError

from . import derive_command, rotate_command, set_kion_key_command, status_command
from .aws_access import SetupError
from .exit_codes import (
    EPILOG,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SETUP,
    EXIT_USAGE,
    HelpFormatter,
)

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ses-smtp-rotator",
        description="Rotate and inspect the Amazon SES SMTP credential of a Kion installation.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("secret", metavar="SECRET", help="the installation secret's name or ARN")
    aws = common.add_argument_group("AWS")
    aws.add_argument(
        "--region",
        help="the secret's region (default: from its ARN, then AWS_REGION or the profile)",
    )
    aws.add_argument("--profile", help="the AWS profile to use (default: the credential chain)")
    aws.add_argument(
        "--log-group",
        metavar="NAME",
        help="the rotation function's log group (default: from the function's configuration)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    derive_command.register(commands)
    rotate_command.register(commands, common)
    status_command.register(commands, common)
    set_kion_key_command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except SetupError as error:
        print(f"error: {error.cause}\n  Fix: {error.fix}", file=sys.stderr)
        return EXIT_SETUP
    except ClientError as error:
        details = error.response.get("Error", {})
        print(
            f"error: AWS answered {error.operation_name} with {details.get('Code', 'an error')}: "
            f"{details.get('Message', '')}",
            file=sys.stderr,
        )
        return EXIT_SETUP
    except BotoCoreError as error:
        print(f"error: the AWS call failed before AWS answered: {error}", file=sys.stderr)
        return EXIT_SETUP
    except KeyboardInterrupt:
        print("Interrupted. Whatever was started in AWS goes on.", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
