"""``ses-smtp-rotator status SECRET``: where an installation's SMTP credential stands."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from typing import TextIO

from ses_smtp_rotator.cli.aws_access import open_aws
from ses_smtp_rotator.cli.exit_codes import (
    EXIT_FAILED,
    EXIT_IN_PROGRESS,
    EXIT_OK,
    EXIT_UNCHECKED,
    HelpFormatter,
    epilog_for,
)
from ses_smtp_rotator.cli.fleet import secret_id_for
from ses_smtp_rotator.cli.installation_status import (
    FAILING,
    IN_PROGRESS,
    UNCHECKED,
    Check,
    InstallationStatus,
    gather,
)
from ses_smtp_rotator.cli.units import span

_LABEL_WIDTH = 19
_CHECK_TITLES = {
    "secret": "Installation secret",
    "rotation": "Rotation function",
    "kion": "Kion",
    "kion_endpoint": "Kion's SMTP host",
    "kion_api_key": "Kion API key",
    "access_key": "Access key",
    "ses": "SES SMTP",
    "last_rotation": "Rotation age",
    "pending": "Pending rotation",
    "rollback": "Rollback",
    "kion_api_key_renewal": "Kion key renewal",
    "retired_keys": "Retired keys",
    "retired_key_deletion": "Retired key deletion",
}


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "status",
        parents=[common],
        help="where the credential stands; non-zero when a rotation would fail now",
        description="Show where an installation's SMTP credential stands: the AWSCURRENT access "
        "key and its age, the last and next rotation, whether Kion accepts the App API key and "
        "sends with the AWSCURRENT key, the IAM keys, any unfinished rotation (running, failed, "
        "or stuck: not touched by the function within its timeout), and whether SES accepts the "
        "current credential. The checks are the daily watch's own: asked of the deployed watch "
        "function (lambda:Invoke), so the Kion API key is never read here; run here with "
        "--no-watch or when there is no watch. Exits non-zero whenever a rotation would fail "
        "now; 3 only for a rotation the function is still working on. Never prints a password "
        "or key. Several SECRETs, globs, --all or --deployment print one row per installation. "
        "Needs "
        "secretsmanager:DescribeSecret, GetSecretValue (on the installation secret; on the Kion "
        "API key secret only without a watch) and ListSecretVersionIds (ListSecrets to select "
        "several); iam:ListAccessKeys, lambda:GetFunctionConfiguration, "
        "scheduler:ListSchedules/GetSchedule and logs:FilterLogEvents add detail when allowed.",
        epilog=epilog_for("status"),
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--check-smtp",
        action="store_true",
        help="when no watch answers for Kion's side: also try SMTP AUTH with the current "
        "credential from here (sends no mail; the watch always tries it)",
    )
    parser.add_argument(
        "--no-watch",
        dest="use_watch",
        action="store_false",
        help="run the checks from this machine even when a watch is deployed (they are the "
        "watch's own checks; Kion and the Kion API key secret must then be reachable from here)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    aws = open_aws(args.secret[0], profile=args.profile, region=args.region)
    secret_id = secret_id_for(aws.client("secretsmanager"), args.secret[0])
    status = gather(
        aws,
        secret_id,
        check_smtp=args.check_smtp,
        use_watch=args.use_watch,
        log_group=args.log_group,
    )
    if args.json:
        print(status.to_json())
    else:
        render(status, sys.stdout)
    return exit_code(status)


_EXIT_CODES = {FAILING: EXIT_FAILED, UNCHECKED: EXIT_UNCHECKED, IN_PROGRESS: EXIT_IN_PROGRESS}


def exit_code(status: InstallationStatus) -> int:
    """1 when a rotation would fail now, 6 when a check could not be made, 3 while a rotation
    the function is working on runs, else 0."""
    return _EXIT_CODES.get(status.verdict, EXIT_OK)


def render(status: InstallationStatus, out: TextIO) -> None:
    """The human-readable report."""
    now = datetime.now(UTC)

    def row(label: str, text: str) -> None:
        print(f"  {label:<{_LABEL_WIDTH}} {text}", file=out)

    row("Installation secret", f"{status.secret_name} ({status.secret_arn})")
    if status.access_key_id:
        created = f", created {_when(status.key_created, now)}" if status.key_created else ""
        row("Current key", f"{status.access_key_id} (version {status.current_version}){created}")
    elif status.current_version:
        row("Current key", "none yet: the first rotation adopts the key Kion sends with")
    if status.access_keys:
        listed = ", ".join(
            f"{key.access_key_id} ({key.role}{'' if key.active else ', inactive'})"
            for key in status.access_keys
        )
        row("IAM user", f"{status.iam_user_name}: {listed}")
    if status.current_key_last_used:
        row("Current key's use", f"IAM: {status.current_key_last_used} (information only)")
    row("Last rotation", _when(status.last_rotated, now) if status.last_rotated else "never")
    if status.next_rotation:
        by = f", by schedule {status.schedule}" if status.schedule else ""
        row("Next rotation", f"{_when(status.next_rotation, now)}{by}")
    else:
        row("Next rotation", f"unknown: {status.schedule or 'no schedule found'}")
    if status.rotation_function:
        timeout = f" (timeout {status.function_timeout})" if status.function_timeout else ""
        row("Rotation function", f"{status.rotation_function}{timeout}")
    if status.kion_checked_by:
        row("Kion's side", f"checked by the watch {status.kion_checked_by}")
    for name, check in status.checks.items():
        _render_check(_CHECK_TITLES.get(name, name), check, out)


def _render_check(title: str, check: Check, out: TextIO) -> None:
    mark = {True: "✓", False: "✗", None: "?"}[check.ok]
    print(f"{mark} {title:<{_LABEL_WIDTH}} {check.summary}", file=out)
    if check.fix and check.ok is not True:
        print(f"  {'':<{_LABEL_WIDTH}} Fix: {check.fix}", file=out)


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "unknown"
    stamp = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    delta = now - moment
    relative = _span(abs(delta))
    return f"{stamp} ({relative} ago)" if delta >= timedelta(0) else f"{stamp} (in {relative})"


def _span(delta: timedelta) -> str:
    return span(delta)
