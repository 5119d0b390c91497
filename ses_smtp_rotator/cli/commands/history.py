"""``ses-smtp-rotator history INSTALLATION``: past rotations, rollbacks and Kion API key renewals,
newest first, with the outcome events the rotation function announced, from the functions' logs
(``cli/rotation_history.py``)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from ses_smtp_rotator.cli.aws_access import AwsAccess, open_aws, region_of_arn
from ses_smtp_rotator.cli.commands.fleet import listed_installations
from ses_smtp_rotator.cli.exit_codes import EXIT_FAILED, EXIT_OK, HelpFormatter, epilog_for
from ses_smtp_rotator.cli.fleet import secret_id_for
from ses_smtp_rotator.cli.rotation_function import describe_function
from ses_smtp_rotator.cli.rotation_history import (
    FAILED,
    FINISHED,
    RENEWAL,
    ROLLBACK,
    ROTATION,
    PastRotation,
    past_rotations,
)
from ses_smtp_rotator.cli.secret_state import (
    SecretState,
    kion_key_secret_state,
    read_state,
    require_installation_secret,
)

DEFAULT_DAYS = 90


def register(commands: argparse._SubParsersAction, aws: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "history",
        parents=[aws],
        help="list an installation's past rotations, rollbacks and Kion API key renewals",
        description="List the past rotations of an installation's SES SMTP credential, its "
        "rollbacks (ses-smtp-rotator rollback) and the renewals of its Kion API key, newest "
        "first: when, the outcome, the step that failed with its cause and fix, the keys each "
        "one made or retired, and the outcome events the rotation function put on EventBridge. "
        "Read from the rotation and renewal functions' log groups (logs:FilterLogEvents; the "
        "log groups keep a year by default). Exits 1 when the latest rotation or renewal "
        "failed (a refused rollback changes nothing, so it does not count).",
        epilog=epilog_for("history"),
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "secret",
        metavar="INSTALLATION",
        nargs="?",
        help="the installation secret's name or ARN, or the installation's name",
    )
    parser.add_argument("--all", action="store_true", help="every installation in the region")
    parser.add_argument("--deployment", metavar="NAME", help="with --all: one deployment's only")
    parser.add_argument(
        "--days",
        type=int,
        default=DEFAULT_DAYS,
        metavar="N",
        help=f"how far back to look, in days (default {DEFAULT_DAYS})",
    )
    parser.add_argument(
        "--log-group",
        metavar="NAME",
        help="the rotation function's log group (default: from the function's configuration)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.set_defaults(run=run, history_parser=parser)


def run(args: argparse.Namespace) -> int:
    if bool(args.secret) == bool(args.all):
        args.history_parser.error("name one INSTALLATION, or pass --all")
    aws = open_aws(args.secret or "", profile=args.profile, region=args.region)
    secretsmanager = aws.client("secretsmanager")
    if args.all:
        secret_ids = [item.secret_arn for item in listed_installations(aws, args.deployment)]
    else:
        secret_ids = [secret_id_for(secretsmanager, args.secret)]
    since = datetime.now(UTC) - timedelta(days=args.days)
    histories = []
    for secret_id in secret_ids:
        state = read_state(secretsmanager, secret_id)
        require_installation_secret(state)
        histories.append(_history(aws, secretsmanager, state, args.log_group, since))
    if args.json:
        document: Any = [history.to_document() for history in histories]
        print(json.dumps(document if args.all else document[0], indent=2))
    else:
        for history in histories:
            print(history.text(args.days))
    latest_failed = any(history.latest_failed for history in histories)
    return EXIT_FAILED if latest_failed else EXIT_OK


class _History:
    def __init__(self, state: SecretState) -> None:
        self.state = state
        self.rotations: list[PastRotation] = []
        self.sources: list[str] = []
        self.unreadable: list[str] = []

    @property
    def latest_failed(self) -> bool:
        latest: dict[str, PastRotation] = {}
        for rotation in self.rotations:
            if rotation.kind != ROLLBACK:
                latest.setdefault(rotation.kind, rotation)
        return any(rotation.outcome == FAILED for rotation in latest.values())

    def to_document(self) -> dict[str, Any]:
        return {
            "installation_secret": self.state.name,
            "secret_arn": self.state.arn,
            "log_groups": self.sources,
            "unreadable": self.unreadable,
            "rotations": [rotation.to_document() for rotation in self.rotations],
        }

    def text(self, days: int) -> str:
        lines = [f"{self.state.name}: the last {days} days, newest first"]
        lines += [f"  ? {reason}" for reason in self.unreadable]
        if not self.rotations:
            lines.append(
                f"  no rotation, rollback or renewal logged in {', '.join(self.sources) or '-'}"
            )
        for rotation in self.rotations:
            lines.extend(_lines(rotation))
        return "\n".join(lines)


def _history(
    aws: AwsAccess,
    secretsmanager: Any,
    state: SecretState,
    log_group: str | None,
    since: datetime,
) -> _History:
    history = _History(state)
    sources: list[tuple[str, SecretState, str | None]] = [(ROTATION, state, log_group)]
    key_state = kion_key_secret_state(secretsmanager, state)
    if key_state is not None:
        sources.append((RENEWAL, key_state, None))
    for kind, secret, group in sources:
        if not secret.function_arn and group is None:
            history.unreadable.append(f"no rotation function is attached to {secret.name}")
            continue
        region = region_of_arn(secret.function_arn or "") or aws.region
        function = describe_function(
            aws.client("lambda", region), secret.function_arn or "", log_group=group
        )
        history.sources.append(function.log_group)
        found, unreadable = past_rotations(
            aws.client("logs", region),
            function.log_group,
            kind=kind,
            secret_arn=secret.arn,
            name=secret.name,
            since=since,
        )
        history.rotations.extend(found)
        if unreadable:
            history.unreadable.append(f"the {kind}s are not known: {unreadable}")
    history.rotations.sort(key=lambda rotation: rotation.started, reverse=True)
    return history


_MARKS = {"finished": "✓", "failed": "✗", "unfinished": "…"}


def _lines(rotation: PastRotation) -> list[str]:
    took = (rotation.ended - rotation.started).total_seconds()
    which = "invocation" if rotation.kind == ROLLBACK else "version"
    lines = [
        f"  {_MARKS.get(rotation.outcome, '?')} {rotation.started:%Y-%m-%d %H:%M:%S} UTC  "
        f"{rotation.kind} {rotation.outcome} in {took:.0f} s  ({which} {rotation.token})"
    ]
    if rotation.outcome == FAILED:
        what = "refused" if rotation.kind == ROLLBACK else f"{rotation.failed_step} failed"
        lines.append(f"      {what}: {rotation.cause}")
        if rotation.fix:
            lines.append(f"      Fix: {rotation.fix}")
    elif rotation.outcome != FINISHED and rotation.kind == ROLLBACK:
        lines.append(
            f"      stopped before it finished: ses-smtp-rotator rollback {rotation.secret} "
            "picks up where it stopped"
        )
    for key, event in rotation.keys:
        lines.append(f"      key {key}: {event}")
    for outcome, bus in rotation.events:
        where = f"put on EventBridge bus {bus}" if bus else "logged only: no event bus is set"
        lines.append(f"      outcome event: {outcome} ({where})")
    return lines
