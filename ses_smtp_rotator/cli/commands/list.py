"""``list``: the installations of a deployment, from their secrets' tags (no secret value read)."""

from __future__ import annotations

import argparse
import json
import sys

from ses_smtp_rotator.cli import fleet_report
from ses_smtp_rotator.cli.aws_access import open_aws
from ses_smtp_rotator.cli.commands.fleet import listed_installations
from ses_smtp_rotator.cli.exit_codes import EXIT_OK, HelpFormatter, epilog_for
from ses_smtp_rotator.cli.fleet import DEPLOYMENT_TAG, INSTALLATION_TAG


def register(commands: argparse._SubParsersAction, aws: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "list",
        parents=[aws],
        help="list the installations of a deployment",
        description=f"List the installation secrets in the region: the secrets tagged "
        f"{INSTALLATION_TAG} (the stack tags every installation's resources with its name), "
        f"without the Kion API key secrets. --deployment NAME keeps those tagged "
        f"{DEPLOYMENT_TAG}=NAME or made by the stack NAME. Needs secretsmanager:ListSecrets; "
        "reads no secret value.",
        epilog=epilog_for("list"),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--deployment", metavar="NAME", help="a deployment (or stack) name to keep")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    aws = open_aws("", profile=args.profile, region=args.region)
    installations = listed_installations(aws, args.deployment)
    if args.json:
        print(
            json.dumps(
                [fleet_report.installation_document(item) for item in installations], indent=2
            )
        )
        return EXIT_OK
    rows = [
        (
            item.name,
            item.secret_name,
            item.deployment or item.stack or "-",
            fleet_report.date(item.last_rotated),
        )
        for item in installations
    ]
    fleet_report.table(("INSTALLATION", "SECRET", "DEPLOYMENT", "LAST ROTATION"), rows, sys.stdout)
    return EXIT_OK
