"""``ses-smtp-rotator adopt --kion-url URL``: an installation's settings from a Kion whose SMTP
settings someone typed by hand, written into cdk.json (or printed as a construct call), and with
``--check`` every precondition of the first rotation checked before anything is deployed."""

from __future__ import annotations

import argparse
import difflib
import getpass
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ses_smtp_rotator.cli import onboarding
from ses_smtp_rotator.cli.aws_access import open_aws
from ses_smtp_rotator.cli.exit_codes import EPILOG, EXIT_FAILED, EXIT_OK, EXIT_USAGE, HelpFormatter
from ses_smtp_rotator.functions.errors import RotationError
from ses_smtp_rotator.functions.services.kion_settings import KionClient


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "adopt",
        help="find an installation's settings from Kion and write them into cdk.json",
        description="Read Kion's SMTP settings, find the IAM user owning the access key Kion "
        "sends with (in the account the AWS credentials reach) and the SES region of Kion's SMTP "
        "host, and add the installation to cdk.json (a diff is shown and confirmed) or print the "
        "construct call. The Kion App API key is read from a hidden prompt, or from standard "
        "input when piped; it is never printed or stored. Needs iam:GetAccessKeyLastUsed; "
        "--check also needs ses:GetAccount, ses:GetEmailIdentity, iam:GetUser, "
        "iam:ListAccessKeys and iam:SimulatePrincipalPolicy.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--kion-url", required=True, metavar="URL", help="Kion's address")
    parser.add_argument(
        "--name", help="the installation's name (default: the first label of Kion's host name)"
    )
    parser.add_argument(
        "--iam-user-name", metavar="USER", help="the IAM user (default: the owner of Kion's key)"
    )
    parser.add_argument(
        "--cdk-json", type=Path, default=Path("cdk.json"), help="the file to write (cdk.json)"
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--yes", action="store_true", help="write cdk.json without asking")
    output.add_argument(
        "--print-construct", action="store_true", help="print the construct call, write nothing"
    )
    parser.add_argument(
        "--check", action="store_true", help="also check every precondition of the first rotation"
    )
    parser.add_argument("--profile", help="the AWS profile to use (default: the credential chain)")
    parser.add_argument("--region", help="the AWS region for IAM (default: the SES region)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    kion_url = args.kion_url.rstrip("/")
    if urlparse(kion_url).scheme not in ("http", "https") or not urlparse(kion_url).hostname:
        print(
            f"error: --kion-url {kion_url} is not a web address.\n  Fix: pass https://HOST",
            file=sys.stderr,
        )
        return EXIT_USAGE
    api_key = read_api_key()
    if not api_key:
        print(
            "error: no Kion App API key given.\n  Fix: type it at the prompt or pipe it in.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    kion = KionClient(kion_url, api_key, timeout=15, retries=2, api_key_secret_id="(adopt)")
    aws = open_aws("", profile=args.profile, region=args.region or "us-east-1")
    try:
        adoption = onboarding.adopt(kion, aws.client("iam"), args.iam_user_name)
    except RotationError as error:
        print(f"error: {error.cause}\n  Fix: {error.fix}", file=sys.stderr)
        return EXIT_FAILED
    for reason in adoption.reasons():
        print(reason)
    name = args.name or (urlparse(kion_url).hostname or "kion").split(".")[0]
    entry = cdk_entry(name, adoption)
    code = EXIT_OK
    if args.check:
        findings = onboarding.preconditions(aws, kion, adoption, [adoption.smtp.username])
        for finding in findings:
            print("\n".join(finding.lines()))
        code = onboarding.exit_code(findings)
    if args.print_construct:
        print(construct_call(entry))
        return code
    written = write_cdk_json(args.cdk_json, entry, confirm=not args.yes)
    return code if written else EXIT_FAILED


def read_api_key() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("Kion App API key (hidden): ").strip()
    return sys.stdin.readline().strip()


def cdk_entry(name: str, adoption: onboarding.Adoption) -> dict[str, Any]:
    """The installation as cdk.json declares it (``context.installations[]``)."""
    entry: dict[str, Any] = {
        "name": name,
        "kionUrl": adoption.kion_url,
        "sesRegion": adoption.ses_region,
        "iamUserName": adoption.iam_user_name,
    }
    if adoption.host.host != f"email-smtp.{adoption.ses_region}.amazonaws.com":
        entry["smtpHost"] = adoption.host.host
    if adoption.smtp.from_address:
        entry["fromAddress"] = adoption.smtp.from_address
    return entry


_CONSTRUCT_NAMES = {
    "name": "name",
    "kionUrl": "kion_url",
    "sesRegion": "ses_region",
    "iamUserName": "iam_user_name",
    "smtpHost": "smtp_host",
    "fromAddress": "from_address",
}


def construct_call(entry: dict[str, Any]) -> str:
    """The Python construct call declaring ``entry``."""
    arguments = "".join(f"        {_CONSTRUCT_NAMES[k]}={v!r},\n" for k, v in entry.items())
    return (
        "from ses_smtp_rotator.cdk import Installation, SesSmtpRotation\n\n"
        'SesSmtpRotation(\n    self,\n    "SesSmtpRotation",\n    installations=[\n'
        f"        Installation(\n{arguments.replace('        ', '            ')}        ),\n"
        "    ],\n)"
    )


def merged(document: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """``document`` with ``entry`` in its installations: merged into the one of its name, else
    appended; everything else as it was."""
    result = json.loads(json.dumps(document))
    installations = result.setdefault("context", {}).setdefault("installations", [])
    for existing in installations:
        if isinstance(existing, dict) and existing.get("name") == entry["name"]:
            existing.update(entry)
            break
    else:
        installations.append(entry)
    return result


def write_cdk_json(path: Path, entry: dict[str, Any], *, confirm: bool) -> bool:
    """Merge ``entry`` into ``path``, show the diff, and write it once confirmed."""
    try:
        before_text = path.read_text(encoding="utf-8") if path.exists() else "{}\n"
        document = json.loads(before_text)
    except (OSError, ValueError) as error:
        print(
            f"error: {path} cannot be read as JSON ({error}).\n  Fix: repair it or pass "
            "--cdk-json, or use --print-construct.",
            file=sys.stderr,
        )
        return False
    after_text = json.dumps(merged(document, entry), indent=2) + "\n"
    if after_text == before_text:
        print(f"{path} already declares installation {entry['name']} so.")
        return True
    sys.stdout.writelines(
        difflib.unified_diff(
            before_text.splitlines(keepends=True),
            after_text.splitlines(keepends=True),
            str(path),
            f"{path} (adopted)",
        )
    )
    if confirm:
        if not sys.stdin.isatty():
            print(
                f"error: not writing {path} without confirmation.\n  Fix: pass --yes, or run "
                "at a terminal.",
                file=sys.stderr,
            )
            return False
        if input(f"Write {path}? [y/N] ").strip().lower() not in ("y", "yes"):
            print(f"{path} left unchanged.")
            return False
    path.write_text(after_text, encoding="utf-8")
    print(f"Wrote installation {entry['name']} into {path}.")
    return True
