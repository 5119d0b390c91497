"""``ses-smtp-rotator``: the operator's command line.

``list``, ``rotate`` and ``status`` work against real AWS (the default credential chain,
``--profile``, ``--region``) and against the local demo (boto3 honours ``AWS_ENDPOINT_URL``).
``rotate`` and ``status`` take one installation secret, or several (names, globs, ``--all``,
``--deployment``) with a summary table. ``derive`` works offline. ``adopt`` turns a
hand-configured Kion into an installation in cdk.json and ``check`` checks every precondition of
an installation's next rotation.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version

from botocore.exceptions import BotoCoreError, ClientError

from ses_smtp_rotator.cli.aws_access import SetupError
from ses_smtp_rotator.cli.colour import ColourStream, colour_wanted
from ses_smtp_rotator.cli.commands import abandon as abandon_command
from ses_smtp_rotator.cli.commands import adopt as adopt_command
from ses_smtp_rotator.cli.commands import check as check_command
from ses_smtp_rotator.cli.commands import completion as completion_command
from ses_smtp_rotator.cli.commands import derive as derive_command
from ses_smtp_rotator.cli.commands import fleet as fleet_command
from ses_smtp_rotator.cli.commands import history as history_command
from ses_smtp_rotator.cli.commands import list as list_command
from ses_smtp_rotator.cli.commands import rollback as rollback_command
from ses_smtp_rotator.cli.commands import rotate as rotate_command
from ses_smtp_rotator.cli.commands import set_kion_key as set_kion_key_command
from ses_smtp_rotator.cli.commands import status as status_command
from ses_smtp_rotator.cli.exit_codes import (
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
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    aws_options = argparse.ArgumentParser(add_help=False)
    aws = aws_options.add_argument_group("AWS")
    aws.add_argument(
        "--region",
        help="the secrets' region (default: from the secret's ARN, then AWS_REGION or the profile)",
    )
    aws.add_argument("--profile", help="the AWS profile to use (default: the credential chain)")
    common = argparse.ArgumentParser(add_help=False, parents=[aws_options])
    common.add_argument(
        "secret",
        metavar="SECRET",
        nargs="*",
        help="an installation secret's name or ARN; several, or globs matched against "
        "installation and secret names, act on each and print a summary table",
    )
    common.add_argument(
        "--log-group",
        metavar="NAME",
        help="the rotation function's log group (default: from the function's configuration)",
    )
    fleet_command.add_selection(common)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    derive_command.register(commands)
    list_command.register(commands, aws_options)
    rotate_command.register(commands, common)
    status_command.register(commands, common)
    set_kion_key_command.register(commands, aws_options)
    abandon_command.register(commands, aws_options)
    adopt_command.register(commands, aws_options)
    check_command.register(commands, aws_options)
    history_command.register(commands, aws_options)
    completion_command.register(commands, parser)
    rollback_command.register(commands, aws_options)
    return parser


def _version() -> str:
    try:
        return version("ses-smtp-rotator")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """``parser.parse_args``, except that an unknown option is refused by the subcommand it was
    given to (its own usage) with the nearest options it does have."""
    args, unknown = parser.parse_known_args(argv)
    if not unknown:
        return args
    command = _subcommand(parser, args.command)
    suggestions = []
    for word in unknown:
        if word.startswith("-"):
            flag = word.split("=", 1)[0]
            close = difflib.get_close_matches(flag, _long_options(command), n=1, cutoff=0.6)
            if close:
                suggestions.append(f"{flag}: did you mean {close[0]}?")
    hint = f" ({'; '.join(suggestions)})" if suggestions else ""
    command.error(f"unrecognized arguments: {' '.join(unknown)}{hint}")
    raise AssertionError("argparse's error() exits")  # pragma: no cover


def _subcommand(parser: argparse.ArgumentParser, name: str | None) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            return action.choices[name]
    return parser


def _long_options(parser: argparse.ArgumentParser) -> list[str]:
    return [
        option
        for action in parser._actions
        for option in action.option_strings
        if option[:2] == "--"
    ]


def main(argv: Sequence[str] | None = None) -> int:
    with _coloured_on_terminals():
        return _main(argv)


@contextmanager
def _coloured_on_terminals() -> Iterator[None]:
    """Standard output and error coloured while each is a terminal that wants colour."""
    saved = sys.stdout, sys.stderr
    if colour_wanted(sys.stdout):
        sys.stdout = ColourStream(sys.stdout)  # type: ignore[assignment]
    if colour_wanted(sys.stderr):
        sys.stderr = ColourStream(sys.stderr)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parse(parser, argv)
    run = args.run
    if args.command in ("rotate", "status"):
        fleet_command.require_selection(parser, args)
        if fleet_command.is_fleet(args):
            run = {"rotate": fleet_command.run_rotate, "status": fleet_command.run_status}[
                args.command
            ]
    try:
        return int(run(args))
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
        print(
            f"Interrupted. Whatever was started in AWS goes on.{_follow_again(args)}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


def _follow_again(args: argparse.Namespace) -> str:
    """How to pick up again what an interrupted ``rotate`` or ``status`` was following."""
    if args.command not in ("rotate", "status"):
        return ""
    selection = " ".join(args.secret) or ("--all" if args.all else "")
    if args.deployment:
        selection += f" --deployment {args.deployment}"
    if args.command == "rotate" and getattr(args, "wait", False):
        return (
            f"\nFollow it again: ses-smtp-rotator rotate {selection} --wait (it attaches to the "
            f"rotation in progress), or see where it is: ses-smtp-rotator status {selection}"
        )
    return f"\nSee where it is: ses-smtp-rotator status {selection}"


if __name__ == "__main__":
    sys.exit(main())
