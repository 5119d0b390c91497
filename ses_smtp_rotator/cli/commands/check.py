"""``ses-smtp-rotator check INSTALLATION``: every precondition of the installation's next (or
first) rotation, each passing, failing or not to be told from here, with its cause and fix."""

from __future__ import annotations

import argparse

from ses_smtp_rotator.cli import onboarding
from ses_smtp_rotator.cli.aws_access import asking, open_aws
from ses_smtp_rotator.cli.commands.set_kion_key import _installation as installation_of
from ses_smtp_rotator.cli.exit_codes import EPILOG, EXIT_FAILED, HelpFormatter
from ses_smtp_rotator.cli.fleet import secret_id_for
from ses_smtp_rotator.functions.errors import RotationError
from ses_smtp_rotator.functions.services.kion_settings import KionClient
from ses_smtp_rotator.functions.services.secrets_store import KionApiKeys
from ses_smtp_rotator.functions.services.ses_hosts import kion_endpoint_verdict


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "check",
        help="check every precondition of an installation's first rotation",
        description="Check, before a rotation runs, that SES sends in the installation's region "
        "(out of the sandbox), that Kion's sender is verified, that the IAM user may send as it, "
        "that the user has room for a new key, that Kion's API key works and can renew itself, "
        "and that Kion's SMTP host is reachable. Exits 0 when every check passes, 1 when one "
        "fails, 6 when none fails but some could not be made from here.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "secret", metavar="INSTALLATION", help="the installation secret's name or ARN, or its name"
    )
    parser.add_argument("--region", help="the secret's region (default: from its ARN, then AWS)")
    parser.add_argument("--profile", help="the AWS profile to use (default: the credential chain)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    aws = open_aws(args.secret, profile=args.profile, region=args.region)
    secretsmanager = aws.client("secretsmanager")
    secret_id = secret_id_for(secretsmanager, args.secret)
    _, installation = installation_of(secretsmanager, secret_id)
    with asking("secretsmanager:GetSecretValue", f"secret {installation.kion_api_key_secret_id}"):
        api_key = KionApiKeys(0, secretsmanager).api_key(installation.kion_api_key_secret_id)
    kion = KionClient(
        installation.kion_url,
        api_key,
        ca_pem=installation.kion_ca_bundle,
        timeout=15,
        retries=2,
        api_key_secret_id=installation.kion_api_key_secret_id,
    )
    try:
        smtp = kion.smtp_settings()
        host = onboarding.ses_host_of(smtp, installation.kion_url)
    except RotationError as error:
        print(f"[FAIL] Kion's SMTP settings: {error.cause}\n       Fix: {error.fix}")
        return EXIT_FAILED
    verdict = kion_endpoint_verdict(smtp, installation)
    endpoint = onboarding.Finding(
        "Kion's SES endpoint",
        onboarding.PASS if verdict.ok else onboarding.FAIL,
        verdict.summary,
        verdict.fix,
    )
    adoption = onboarding.Adoption(installation.kion_url, smtp, host, installation.iam_user_name)
    recorded = [key for key in (installation.username, smtp.username) if key]
    findings = [endpoint, *onboarding.preconditions(aws, kion, adoption, recorded)]
    for finding in findings:
        print("\n".join(finding.lines()))
    return onboarding.exit_code(findings)
