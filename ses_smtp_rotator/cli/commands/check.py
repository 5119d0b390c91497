"""``ses-smtp-rotator check INSTALLATION``: every precondition of the installation's next (or
first) rotation, each passing, failing or not to be told from here, with its cause and fix."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ses_smtp_rotator.cli import onboarding
from ses_smtp_rotator.cli.aws_access import SetupError, asking, open_aws
from ses_smtp_rotator.cli.commands.adopt import GIVEN_KEY, read_api_key
from ses_smtp_rotator.cli.exit_codes import CHECK_EPILOG, EXIT_FAILED, EXIT_USAGE, HelpFormatter
from ses_smtp_rotator.cli.fleet import secret_id_for
from ses_smtp_rotator.cli.secret_state import CURRENT, read_installation
from ses_smtp_rotator.functions.errors import RotationError
from ses_smtp_rotator.functions.kion_key_renewal.key_secret import StoredApiKey
from ses_smtp_rotator.functions.services.kion_keys import KionKeyClient
from ses_smtp_rotator.functions.services.ses_hosts import kion_endpoint_verdict


def register(commands: argparse._SubParsersAction, aws_options: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "check",
        parents=[aws_options],
        help="check every precondition of an installation's first rotation",
        description="Check, before a rotation runs, that Kion sends through an SES endpoint of "
        "the installation's region, that SES sends there (out of the sandbox), that Kion's "
        "sender is a verified identity, that the IAM user may send as it, that the user has "
        "room for a new key, that Kion's API key may read and write the SMTP settings and renew "
        "itself, and that the SES SMTP host answers on the port the function dials. Each check "
        "prints ok, FAIL or ? with its cause and fix. Needs secretsmanager:GetSecretValue on "
        "both secrets, ses:GetAccount, ses:GetEmailIdentity, iam:GetUser, iam:ListAccessKeys, "
        "iam:GetAccessKeyLastUsed and iam:SimulatePrincipalPolicy; writes Kion's sender "
        "(smtp_from) back unchanged to prove the key may write it.",
        epilog=CHECK_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "secret", metavar="INSTALLATION", help="the installation secret's name or ARN, or its name"
    )
    parser.add_argument(
        "--kion-key",
        action="store_true",
        help="read the Kion App API key from a hidden prompt (or standard input when piped) "
        "instead of the installation's Kion API key secret, which the stack's operator policy "
        "does not let operators read",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    aws = open_aws(args.secret, profile=args.profile, region=args.region)
    secretsmanager = aws.client("secretsmanager")
    secret_id = secret_id_for(secretsmanager, args.secret)
    _, installation = read_installation(secretsmanager, secret_id)
    key_secret = installation.kion_api_key_secret_id
    if args.kion_key:
        typed = read_api_key()
        if not typed:
            return EXIT_USAGE
        stored, key_secret = StoredApiKey(typed, None, None, {}), GIVEN_KEY
    else:
        stored = _stored_key(secretsmanager, key_secret)
    if not stored.api_key:
        print(
            f"[FAIL] Kion API key: {key_secret} holds no Kion App API key yet, so Kion's side "
            f"cannot be checked.\n       Fix: ses-smtp-rotator set-kion-key {args.secret}"
        )
        return EXIT_FAILED
    kion = KionKeyClient(
        installation.kion_url,
        stored.api_key,
        ca_pem=installation.kion_ca_bundle,
        timeout=15,
        retries=2,
        api_key_secret_id=key_secret,
    )
    try:
        smtp = kion.smtp_settings()
        host = onboarding.ses_host_of(smtp, installation.kion_url)
    except (RotationError, onboarding.OnboardingError) as error:
        print(f"[FAIL] Kion's SMTP settings: {error.cause}\n       Fix: {error.fix}")
        return EXIT_FAILED
    verdict = kion_endpoint_verdict(smtp, installation)
    endpoint = onboarding.Finding(
        "Kion's SES endpoint",
        onboarding.PASS if verdict.ok else onboarding.FAIL,
        verdict.summary + ("." if verdict.ok else ""),
        verdict.fix,
    )
    adoption = onboarding.Adoption(installation.kion_url, smtp, host, installation.iam_user_name)
    findings = [
        endpoint,
        *onboarding.preconditions(
            aws,
            kion,
            adoption,
            recorded_keys=[smtp.username, *_recorded_keys(secretsmanager, secret_id)],
            api_key_id=stored.api_key_id,
            proof_host=installation.smtp_host,
            proof_port=installation.smtp_port,
        ),
    ]
    for finding in findings:
        print("\n".join(finding.lines()))
    return onboarding.exit_code(findings)


def _recorded_keys(secretsmanager: Any, secret_id: str) -> set[str]:
    """The access keys the installation secret's versions record: the installation's own."""
    with asking("secretsmanager:ListSecretVersionIds", f"secret {secret_id}"):
        versions = secretsmanager.list_secret_version_ids(SecretId=secret_id)["Versions"]
    recorded = set()
    for version in versions:
        with asking("secretsmanager:GetSecretValue", f"secret {secret_id}"):
            value = secretsmanager.get_secret_value(
                SecretId=secret_id, VersionId=version["VersionId"]
            )
        try:
            fields = json.loads(value.get("SecretString") or "")
        except ValueError:
            continue
        if isinstance(fields, dict):
            recorded |= {fields.get(name) for name in ("username", "replaces")} - {None, ""}
    return recorded


def _stored_key(secretsmanager: Any, key_secret: str) -> StoredApiKey:
    """The Kion API key the installation's functions use."""
    try:
        with asking("secretsmanager:GetSecretValue", f"secret {key_secret}"):
            value = secretsmanager.get_secret_value(SecretId=key_secret, VersionStage=CURRENT)
        return StoredApiKey.parse(key_secret, value.get("SecretString"))
    except SetupError as error:
        raise SetupError(
            error.cause,
            f"{error.fix} Or pass --kion-key and type the key (the stack's operator policy "
            "never lets operators read Kion API keys).",
        ) from None
    except RotationError as error:
        raise SetupError(error.cause, error.fix) from None
