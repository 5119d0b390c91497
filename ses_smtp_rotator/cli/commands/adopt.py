"""``ses-smtp-rotator adopt --kion-url URL``: an installation's settings from a Kion whose SMTP
settings someone typed by hand, written into cdk.json (or printed as a construct call), and with
``--check`` every precondition of the first rotation checked before anything is deployed."""

from __future__ import annotations

import argparse
import difflib
import getpass
import json
import os
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from ses_smtp_rotator.cli import onboarding
from ses_smtp_rotator.cli.aws_access import asking, open_aws
from ses_smtp_rotator.cli.commands.set_kion_key import identify_key
from ses_smtp_rotator.cli.exit_codes import (
    CHECK_EPILOG,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    HelpFormatter,
)
from ses_smtp_rotator.functions.errors import RotationError
from ses_smtp_rotator.functions.regions import default_smtp_host
from ses_smtp_rotator.functions.services.kion_keys import KionKeyClient

# Where a key refused with 401 came from, for the fix Kion's client prints.
GIVEN_KEY = "this command's prompt (make a new one in Kion)"
# The installation cdk.json ships with (the construct's PROD_EXAMPLE), which adopt replaces.
SHIPPED_EXAMPLE = {"name": "prod", "kionUrl": "https://kion.example.com", "sesRegion": "us-east-1"}
INSTALLATION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$")


def register(commands: argparse._SubParsersAction, aws_options: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "adopt",
        parents=[aws_options],
        help="find an installation's settings from Kion and write them into cdk.json",
        description="Read Kion's SMTP settings, find the IAM user owning the access key Kion "
        "sends with (in the account the AWS credentials reach) and the SES region of Kion's SMTP "
        "host (public, FIPS or VPC endpoint names), and add the installation to cdk.json (merged "
        "with what is there; a diff is shown and confirmed) or print the construct call. The "
        "Kion App API key is read from a hidden prompt, or from standard input when piped; it is "
        "never printed or stored. Needs iam:GetAccessKeyLastUsed; --check also needs "
        "ses:GetAccount, ses:GetEmailIdentity, iam:GetUser, iam:ListAccessKeys, "
        "iam:GetAccessKeyLastUsed and iam:SimulatePrincipalPolicy, and writes Kion's "
        "sender (smtp_from) back unchanged to prove the key may write it.",
        epilog=CHECK_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--kion-url", required=True, metavar="URL", help="Kion's https:// address")
    parser.add_argument(
        "--name", help="the installation's name (default: the first label of Kion's host name)"
    )
    parser.add_argument(
        "--iam-user-name", metavar="USER", help="the IAM user (default: the owner of Kion's key)"
    )
    parser.add_argument(
        "--kion-ca-bundle",
        type=Path,
        metavar="PEM",
        help="a file with the private CA that signed Kion's certificate (also written as "
        "kionCaBundle)",
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
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    kion_url = args.kion_url.rstrip("/")
    parts = urlparse(kion_url)
    if parts.scheme != "https" or not parts.hostname or parts.path or parts.query:
        return _usage(
            f"--kion-url {args.kion_url} is not the https:// address Kion opens at.",
            "pass https://HOST (no /api, no path), e.g. https://kion.example.com",
        )
    name = args.name or parts.hostname.split(".")[0]
    if not INSTALLATION_NAME.match(name):
        return _usage(
            f"the installation name {name!r} is not 1-32 letters, digits or hyphens.",
            "pass --name, e.g. --name prod",
        )
    ca_pem = _read_ca(args.kion_ca_bundle)
    if ca_pem == "":
        return _usage(
            f"--kion-ca-bundle {args.kion_ca_bundle} holds no PEM certificate.",
            "give the file with the CA certificate (-----BEGIN CERTIFICATE-----) that signed "
            "Kion's certificate",
        )
    api_key = read_api_key()
    if not api_key:
        return EXIT_USAGE
    kion = KionKeyClient(
        kion_url, api_key, ca_pem=ca_pem, timeout=15, retries=2, api_key_secret_id=GIVEN_KEY
    )
    try:
        smtp = kion.smtp_settings()
        host = onboarding.ses_host_of(smtp, kion_url)
        aws = open_aws("", profile=args.profile, region=args.region or host.region)
        with asking("iam:GetAccessKeyLastUsed", f"access key {smtp.username}"):
            adoption = onboarding.adopt(smtp, kion_url, aws.client("iam"), args.iam_user_name)
    except (RotationError, onboarding.OnboardingError) as error:
        print(f"error: {error.cause}\n  Fix: {error.fix}", file=sys.stderr)
        return EXIT_FAILED
    for reason in adoption.reasons():
        print(reason)
    account = _account(aws)
    if account:
        print(f"The user is in AWS account {account}, the one these credentials reach.")
    entry = cdk_entry(name, adoption, ca_pem)
    code = EXIT_OK
    if args.check:
        findings = onboarding.preconditions(
            aws,
            kion,
            adoption,
            recorded_keys=[adoption.smtp.username],
            api_key_id=_key_id(kion),
            proof_host=adoption.host.host,
            proof_port=adoption.smtp_port,
        )
        for finding in findings:
            print("\n".join(finding.lines()))
        code = onboarding.exit_code(findings)
    if args.print_construct:
        print(construct_call(entry))
        return code
    written = write_cdk_json(args.cdk_json, entry, confirm=not args.yes)
    return code if written else EXIT_FAILED


def _account(aws: Any) -> str | None:
    """The account the credentials act in (None when STS does not say)."""
    try:
        return str(aws.client("sts").get_caller_identity()["Account"])
    except (BotoCoreError, ClientError):
        return None


def _key_id(kion: KionKeyClient) -> int | None:
    """The given key's id in Kion, for its user's limit (None when it cannot be told)."""
    try:
        found = identify_key(kion)
    except RotationError:
        return None  # the renewal check says why Kion's keys cannot be listed
    return found.id if found else None


def _usage(cause: str, fix: str) -> int:
    print(f"error: {cause}\n  Fix: {fix}", file=sys.stderr)
    return EXIT_USAGE


def _read_ca(path: Path | None) -> str | None:
    """The PEM text of ``path`` (None without one; "" when it holds no certificate)."""
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""
    return text if "-----BEGIN CERTIFICATE-----" in text else ""


def read_api_key() -> str:
    """A Kion App API key from a hidden prompt, or standard input when piped; "" (with the error
    printed) when none, or not one word, was given."""
    if sys.stdin.isatty():
        api_key = getpass.getpass("Kion App API key (hidden): ").strip()
    else:
        api_key = sys.stdin.readline().strip()
    if api_key and not any(ch.isspace() for ch in api_key):
        return api_key
    _usage(
        "no Kion App API key given (it must be one word).",
        "type it at the prompt, or pipe it in: ... | ses-smtp-rotator <command> ...",
    )
    return ""


def cdk_entry(name: str, adoption: onboarding.Adoption, ca_pem: str | None) -> dict[str, Any]:
    """The installation as cdk.json declares it (``context.installations[]``): the existing user,
    and the host and port only where they are not the defaults."""
    entry: dict[str, Any] = {
        "name": name,
        "kionUrl": adoption.kion_url,
        "sesRegion": adoption.ses_region,
        "iamUserName": adoption.iam_user_name,
    }
    if adoption.host.host != default_smtp_host(adoption.ses_region):
        entry["smtpHost"] = adoption.host.host
    if adoption.smtp_port != onboarding.DEFAULT_PORT:
        entry["smtpPort"] = adoption.smtp_port
    if ca_pem:
        entry["kionCaBundle"] = ca_pem
    return entry


_CONSTRUCT_NAMES = {
    "name": "name",
    "kionUrl": "kion_url",
    "sesRegion": "ses_region",
    "iamUserName": "iam_user_name",
    "smtpHost": "smtp_host",
    "smtpPort": "smtp_port",
    "kionCaBundle": "kion_ca_bundle",
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
    """``document`` with ``entry`` in its installations: merged into the one of its name, in
    place of the example cdk.json ships with, else appended; everything else as it was."""
    result = json.loads(json.dumps(document))
    installations = result["context"].setdefault("installations", [])
    installations[:] = [existing for existing in installations if existing != SHIPPED_EXAMPLE]
    for existing in installations:
        if isinstance(existing, dict) and existing.get("name") == entry["name"]:
            # fromAddress limits a user the stack creates; the adopted user exists already.
            existing.pop("fromAddress", None)
            existing.update(entry)
            break
    else:
        installations.append(entry)
    return result


def write_cdk_json(path: Path, entry: dict[str, Any], *, confirm: bool) -> bool:
    """Merge ``entry`` into ``path``, show the diff, and write it once confirmed."""
    try:
        before_text = path.read_text(encoding="utf-8")
        document = json.loads(before_text)
    except (OSError, ValueError) as error:
        return _refuse(
            f"{path} cannot be read as JSON ({type(error).__name__}: {error}).",
            "run adopt in the CDK app's directory, pass --cdk-json PATH, or use "
            "--print-construct for an app of your own",
        )
    context = document.get("context") if isinstance(document, dict) else None
    if not isinstance(context, dict) or not isinstance(context.get("installations", []), list):
        return _refuse(
            f"{path} has no 'context' object with an 'installations' list.",
            "pass the cdk.json of the ses-smtp-rotator app (--cdk-json), or use --print-construct",
        )
    after_text = json.dumps(merged(document, entry), indent=2, ensure_ascii=False) + "\n"
    if after_text == before_text:
        print(f"{path} already declares installation {entry['name']} so.")
        return True
    diff = difflib.unified_diff(
        before_text.splitlines(), after_text.splitlines(), str(path), f"{path} (adopted)", n=2
    )
    print("\n".join(line.rstrip("\n") for line in diff))
    if confirm:
        if not sys.stdin.isatty():
            return _refuse(
                f"not writing {path} without confirmation.", "pass --yes, or run at a terminal."
            )
        if input(f"Write {path}? [y/N] ").strip().lower() not in ("y", "yes"):
            print(f"{path} left unchanged.")
            return False
    # Written beside it and moved into place: an interrupted write leaves the old file whole.
    partial = path.with_name(f".{path.name}.adopt")
    partial.write_text(after_text, encoding="utf-8")
    os.replace(partial, path)
    print(f"Wrote installation {entry['name']} into {path}.")
    return True


def _refuse(cause: str, fix: str) -> bool:
    print(f"error: {cause}\n  Fix: {fix}", file=sys.stderr)
    return False
