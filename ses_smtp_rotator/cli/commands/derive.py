"""``ses-smtp-rotator derive``: the SES SMTP password for a secret access key.

The key is read from a hidden prompt on a terminal, or from standard input when piped, so it never
lands in the shell history or the process list. What was read is never printed back, not even when
it is refused.
"""

from __future__ import annotations

import argparse
import getpass
import re
import sys

from ses_smtp_rotator.cli.exit_codes import EXIT_OK, EXIT_USAGE, HelpFormatter, epilog_for
from ses_smtp_rotator.functions.regions import ses_regions
from ses_smtp_rotator.functions.services.smtp_password import derive_smtp_password

# An IAM secret access key: 40 characters of the base64 alphabet without padding.
_SECRET_ACCESS_KEY = re.compile(r"[A-Za-z0-9/+]{40}")
# An access key id (long-term AKIA..., temporary ASIA...): 20 upper-case letters and digits.
_ACCESS_KEY_ID = re.compile(r"A[KS]IA[A-Z0-9]{16}")
_EXPECTED = (
    "Expected the secret access key: 40 characters of letters, digits, '/' and '+', shown once "
    "when the access key is created (the second value of the pair, or the 'SecretAccessKey' of "
    "aws iam create-access-key)."
)


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "derive",
        help="print the SES SMTP password for a secret access key",
        description="Print the Amazon SES SMTP password derived from an IAM secret access key. "
        "The key is read from a hidden prompt, or from standard input when piped; it must be a "
        "secret access key (40 characters of letters, digits, '/' and '+'). Exit code 2 when "
        "the region or the key cannot be right; the key is never printed back.",
        epilog=epilog_for("derive"),
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--region", required=True, help="the SES region the password is for, e.g. us-east-1"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    region = args.region.strip()
    if region not in ses_regions():
        print(
            f"error: '{region}' is not a region with Amazon SES. The password is region-specific: "
            "use the region of the SES SMTP endpoint Kion sends through (e.g. us-east-1).",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if sys.stdin.isatty():
        secret_access_key = getpass.getpass("Secret access key (hidden): ")
    else:
        secret_access_key = sys.stdin.readline()
    problem = key_problem(secret_access_key.strip())
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    print(derive_smtp_password(secret_access_key.strip(), region))
    return EXIT_OK


def key_problem(text: str) -> str | None:
    """Why ``text`` cannot be a secret access key (None when it can). Never quotes ``text``."""
    if not text:
        return f"no secret access key was given on standard input. {_EXPECTED}"
    if _ACCESS_KEY_ID.fullmatch(text):
        kind = "a temporary access key id (ASIA...)" if text[1] == "S" else "an access key id"
        return (
            f"that is {kind}, the SMTP user name, not the secret access key. {_EXPECTED} "
            "A lost secret access key cannot be shown again: create a new access key."
        )
    if len(text) != 40:
        return f"what was given has {len(text)} characters, not 40. {_EXPECTED}"
    if not _SECRET_ACCESS_KEY.fullmatch(text):
        return (
            "what was given has characters a secret access key never has (spaces, quotes or "
            f"punctuation other than '/' and '+'). {_EXPECTED}"
        )
    return None
