"""``ses-smtp-rotator derive``: the SES SMTP password for a secret access key.

The key is read from a hidden prompt on a terminal, or from standard input when piped, so it never
lands in the shell history or the process list.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from smtp_rotation.regions import ses_regions
from smtp_rotation.smtp_password import derive_smtp_password


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "derive",
        help="print the SES SMTP password for a secret access key",
        description="Print the Amazon SES SMTP password derived from an IAM secret access key. "
        "The key is read from a hidden prompt, or from standard input when piped.",
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
        return 2
    if sys.stdin.isatty():
        secret_access_key = getpass.getpass("Secret access key (hidden): ")
    else:
        secret_access_key = sys.stdin.readline()
    secret_access_key = secret_access_key.strip()
    if not secret_access_key:
        print("error: no secret access key given on standard input.", file=sys.stderr)
        return 2
    print(derive_smtp_password(secret_access_key, region))
    return 0
