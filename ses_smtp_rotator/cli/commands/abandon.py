"""``ses-smtp-rotator abandon INSTALLATION``: give up a stuck rotation or Kion API key renewal.

Giving up takes AWSPENDING off the unfinished version, as Secrets Manager expects before it
starts another rotation. It is done only once the function has left the rotation alone for its
quiet period (``functions.quiet_period``): the same moment ``status`` offers it and createSecret
may delete the key the given-up rotation made, so the next rotation can start at once.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ses_smtp_rotator.cli.aws_access import AwsAccess, asking, open_aws, region_of_arn
from ses_smtp_rotator.cli.exit_codes import (
    EXIT_IN_PROGRESS,
    EXIT_OK,
    EXIT_USAGE,
    HelpFormatter,
    epilog_for,
)
from ses_smtp_rotator.cli.fleet import secret_id_for
from ses_smtp_rotator.cli.pending_rotation import PendingRotation, assess_pending
from ses_smtp_rotator.cli.rotation_function import describe_function
from ses_smtp_rotator.cli.secret_state import (
    PENDING,
    SecretState,
    kion_key_secret_state,
    read_state,
    require_installation_secret,
)


@dataclass(frozen=True)
class Unfinished:
    """One unfinished rotation of an installation: its SMTP credential's or its Kion key's."""

    what: str
    state: SecretState
    pending: PendingRotation


def register(commands: argparse._SubParsersAction, aws_options: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "abandon",
        parents=[aws_options],
        help="give up a stuck rotation or Kion API key renewal, once that is safe",
        description="Give up an installation's unfinished rotation (or its Kion API key's "
        "renewal): take AWSPENDING off its version so that the next rotation may start. Refused "
        "(exit 3) while the function may still be working on it, that is until it has left the "
        "rotation alone for its timeout plus 60 s; from then on a new rotation may also delete "
        "the access key the given-up one made. AWSCURRENT, Kion and the keys are not touched. "
        "Asks before acting unless --yes. Needs secretsmanager:DescribeSecret, GetSecretValue "
        "and UpdateSecretVersionStage; lambda:GetFunctionConfiguration and logs:FilterLogEvents "
        "tell when the function last worked on it.",
        epilog=epilog_for("abandon"),
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "secret",
        metavar="INSTALLATION",
        help="the installation secret's name or ARN, or the installation's name",
    )
    parser.add_argument("--yes", action="store_true", help="do not ask before giving it up")
    parser.add_argument(
        "--log-group",
        metavar="NAME",
        help="the rotation function's log group (default: from the function's configuration)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    aws = open_aws(args.secret, profile=args.profile, region=args.region)
    secretsmanager = aws.client("secretsmanager")
    state = read_state(secretsmanager, secret_id_for(secretsmanager, args.secret))
    require_installation_secret(state)
    now = datetime.now(UTC)
    unfinished = _unfinished(aws, secretsmanager, state, args.log_group, now)
    if not unfinished:
        print(
            f"Nothing to give up: no rotation of {state.name} or of its Kion API key is unfinished."
        )
        return EXIT_OK
    code = EXIT_OK
    for item in unfinished:
        if not item.pending.may_abandon:
            print(_not_yet(item, now))
            code = EXIT_IN_PROGRESS
            continue
        if not args.yes and not _confirmed(item):
            print("Nothing changed.")
            return EXIT_USAGE
        _give_up(secretsmanager, item)
        print(_given_up(item, state.name))
    return code


def _unfinished(
    aws: AwsAccess, secretsmanager: Any, state: SecretState, log_group: str | None, now: datetime
) -> list[Unfinished]:
    found = []
    if state.pending_version:
        found.append(
            Unfinished("rotation", state, _assess(aws, secretsmanager, state, log_group, now))
        )
    key_state = kion_key_secret_state(secretsmanager, state)
    if key_state is not None and key_state.pending_version:
        found.append(
            Unfinished(
                "Kion API key renewal",
                key_state,
                _assess(aws, secretsmanager, key_state, None, now),
            )
        )
    return found


def _assess(
    aws: AwsAccess, secretsmanager: Any, state: SecretState, log_group: str | None, now: datetime
) -> PendingRotation:
    function = (
        describe_function(
            aws.client("lambda", region_of_arn(state.function_arn)),
            state.function_arn,
            log_group=log_group,
        )
        if state.function_arn
        else None
    )
    assert state.pending_version is not None
    return assess_pending(aws, secretsmanager, state, state.pending_version, function, now=now)


def _not_yet(item: Unfinished, now: datetime) -> str:
    pending = item.pending
    when = (
        f"after {pending.abandon_after.astimezone(UTC):%H:%M:%S} UTC "
        f"(in {(pending.abandon_after - now).total_seconds():.0f} s)"
        if pending.abandon_after
        else "once the function's log or the pending version tells when it last worked on it"
    )
    return (
        f"✗ Not yet: the function may still be working on the {item.what} to version "
        f"{pending.version_id} of {item.state.name} (timeout {pending.function_timeout}; last "
        f"touched per {pending.activity_source}). It may be given up {when}: run this command "
        "again then. Nothing changed."
    )


def _confirmed(item: Unfinished) -> bool:
    if not sys.stdin.isatty():
        print("error: not a terminal, so nobody can confirm.\n  Fix: pass --yes.", file=sys.stderr)
        return False
    answer = input(
        f"Give up the {item.what} to version {item.pending.version_id} of {item.state.name}? [y/N] "
    )
    return answer.strip().lower() in ("y", "yes")


def _give_up(secretsmanager: Any, item: Unfinished) -> None:
    """Take AWSPENDING off the version, unless another run already did."""
    version_id = item.pending.version_id
    with asking("secretsmanager:UpdateSecretVersionStage", f"secret {item.state.arn}"):
        stages = secretsmanager.describe_secret(SecretId=item.state.arn)["VersionIdsToStages"]
        if PENDING in stages.get(version_id, []):
            secretsmanager.update_secret_version_stage(
                SecretId=item.state.arn, VersionStage=PENDING, RemoveFromVersionId=version_id
            )


def _given_up(item: Unfinished, installation_secret: str) -> str:
    key = (
        f" The access key it made, {item.pending.access_key_id}, is a spare now: "
        if (item.what == "rotation" and item.pending.access_key_id)
        else " "
    )
    if item.what == "rotation":
        return (
            f"✓ Gave up the rotation to version {item.pending.version_id}; AWSCURRENT and Kion "
            f"keep the credential they had.{key}the next rotation may delete it.\n"
            f"  The next rotation may start now: ses-smtp-rotator rotate {installation_secret} "
            "--wait"
        )
    return (
        f"✓ Gave up the Kion API key renewal to version {item.pending.version_id}; AWSCURRENT "
        "keeps the key it had. The next renewal may start now (the daily watch starts it when "
        f"due; at once: aws secretsmanager rotate-secret --secret-id {item.state.arn}); its "
        "createSecret deletes the key this one made."
    )
