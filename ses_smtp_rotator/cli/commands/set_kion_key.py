"""``ses-smtp-rotator set-kion-key SECRET``: store a new Kion App API key for an installation.

The fix when the stored key expired or was deleted. The key is read from a hidden prompt on a
terminal, or from standard input when piped; Kion must accept it before it is stored. Its id is
found by listing Kion's keys: the one key whose last use moves when this command uses it (or
``--key-id``). With its id the key's first renewal deletes it; without one it is left to expire.
An installation that has never rotated (right after ``cdk deploy``) gets its first rotation
started and followed here (``--rotate``; asked at a terminal).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from ses_smtp_rotator.cli.aws_access import AwsAccess, asking, open_aws
from ses_smtp_rotator.cli.commands import rotate as rotate_command
from ses_smtp_rotator.cli.exit_codes import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    HelpFormatter,
    epilog_for,
)
from ses_smtp_rotator.cli.fleet import secret_id_for
from ses_smtp_rotator.cli.secret_state import (
    CURRENT,
    PENDING,
    PREVIOUS,
    read_installation,
    read_state,
)
from ses_smtp_rotator.functions.errors import KionAuthError, RotationError
from ses_smtp_rotator.functions.installation_secret import InstallationSecret
from ses_smtp_rotator.functions.services.kion_keys import AppApiKeyInfo, KionKeyClient

# Kion shows a key's last use to the second: wait past one before using the key again.
LAST_USE_RESOLUTION_SECONDS = 1.1


def register(commands: argparse._SubParsersAction, aws_options: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "set-kion-key",
        parents=[aws_options],
        help="check a Kion App API key against Kion and store it for an installation",
        description="Store a Kion App API key in the installation's Kion API key secret, after "
        "Kion accepted it, with its id in Kion and the installation it belongs to, so that the "
        "key renews itself from then on. The key is read from a hidden prompt, or from "
        "standard input when piped; it is never printed. An unfinished renewal of the old key "
        "is cancelled. An installation that has never rotated then gets its first rotation "
        "(--rotate, or asked at a terminal). Needs secretsmanager:GetSecretValue on the "
        "installation secret and DescribeSecret, PutSecretValue and UpdateSecretVersionStage on "
        "the Kion API key secret (and, to rotate, what rotate needs).",
        epilog=epilog_for("set-kion-key"),
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "secret",
        metavar="SECRET",
        help="the installation secret's name or ARN, or the installation's name",
    )
    parser.add_argument(
        "--key-id",
        type=int,
        metavar="ID",
        help="the key's id in Kion (default: found by listing Kion's keys)",
    )
    parser.add_argument(
        "--rotate",
        action=argparse.BooleanOptionalAction,
        help="when the installation has never rotated, start its first rotation and follow it "
        "as rotate --wait does (default: ask at a terminal, else only say how)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    aws = open_aws(args.secret, profile=args.profile, region=args.region)
    secretsmanager = aws.client("secretsmanager")
    secret_id = secret_id_for(secretsmanager, args.secret)
    installation_arn, installation = read_installation(secretsmanager, secret_id)
    api_key = _read_key()
    if not api_key:
        print("error: no Kion App API key given on standard input.", file=sys.stderr)
        return EXIT_USAGE
    if any(ch.isspace() for ch in api_key):
        print("error: the Kion App API key must be one word (no spaces).", file=sys.stderr)
        return EXIT_USAGE
    kion = KionKeyClient(
        installation.kion_url,
        api_key,
        ca_pem=installation.kion_ca_bundle,
        timeout=15,
        retries=2,
        api_key_secret_id=installation.kion_api_key_secret_id,
    )
    try:
        kion.app_config()
        found = _key_by_id(kion, args.key_id) if args.key_id else identify_key(kion)
    except KionAuthError:
        print(
            f"error: Kion at {installation.kion_url} refuses this key (401): it is mistyped, "
            "expired or deleted. Nothing was stored.\n  Fix: create a new App API key in Kion "
            "for the rotator's user and run this command again with it.",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except RotationError as error:
        print(f"error: {error.cause} Nothing was stored.\n  Fix: {error.fix}", file=sys.stderr)
        return EXIT_FAILED
    cancelled = _store(secretsmanager, installation, installation_arn, api_key, found)
    print(f"Kion at {installation.kion_url} accepts the key.")
    if cancelled:
        print(f"Cancelled the unfinished renewal of the old key (version {cancelled}).")
    if found is not None:
        print(f"Stored it with its Kion id {found.id} ('{found.name}') as AWSCURRENT of")
    else:
        print("Stored it without its Kion id (no single key of Kion's list could be told to be")
        print("this one; pass --key-id to record it) as AWSCURRENT of")
    print(f"  {installation.kion_api_key_secret_id}")
    if found is None:
        print("Its first renewal leaves it as it is: Kion ends it when its lifespan runs out.")
    if installation.username:
        return EXIT_OK
    return first_rotation(aws, installation_arn, args.secret, args.rotate)


def first_rotation(aws: AwsAccess, installation_arn: str, name: str, wanted: bool | None) -> int:
    """Start the installation's first rotation now that Kion's key is stored, when wanted (or,
    with no answer given, when the person at the terminal says so), and follow it."""
    if wanted is None and sys.stdin.isatty():
        answer = input("The installation has never rotated. Start its first rotation now? [Y/n] ")
        wanted = answer.strip().lower() in ("", "y", "yes")
    if not wanted:
        print(f"Start the first rotation with: ses-smtp-rotator rotate {name} --wait")
        return EXIT_OK
    print("Starting the first rotation: it adopts the key Kion sends with.")
    return rotate_command.rotate(aws, installation_arn, wait=True)


def identify_key(
    kion: KionKeyClient,
    *,
    pause: float = LAST_USE_RESOLUTION_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> AppApiKeyInfo | None:
    """The key ``kion`` authenticates with: the one key whose last use moves when it is used
    again; None when none or several do (Kion's list never shows a key itself)."""
    before = {key.id: key.last_used for key in kion.list_keys()}
    sleep(pause)
    kion.app_config()
    used = [
        key
        for key in kion.list_keys()
        if key.last_used is not None
        and (before.get(key.id) is None or key.last_used > before[key.id])
    ]
    return used[0] if len(used) == 1 else None


def _key_by_id(kion: KionKeyClient, key_id: int) -> AppApiKeyInfo:
    found = kion.find_key(key_id)
    if found is None:
        raise RotationError(
            f"Kion at {kion.kion_url} has no App API key with id {key_id}.",
            "Look the id up in Kion (the key's entry among the user's App API keys), or leave "
            "out --key-id to let the command find it.",
        )
    return found


def _read_key() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("Kion App API key (hidden): ").strip()
    return sys.stdin.readline().strip()


def _store(
    secretsmanager: Any,
    installation: InstallationSecret,
    installation_arn: str,
    api_key: str,
    found: AppApiKeyInfo | None,
) -> str | None:
    """Store the key as AWSCURRENT; returns the version of a renewal it cancelled, if any.

    AWSPENDING comes off first wherever it is: an unfinished renewal would move AWSCURRENT off
    the key stored here, and delete it; a finished renewal's AWSPENDING left on AWSCURRENT would
    end up on AWSPREVIOUS, where Secrets Manager refuses every later renewal."""
    secret_id = installation.kion_api_key_secret_id
    state = read_state(secretsmanager, secret_id)
    pending = next((vid for vid, labels in state.stages.items() if PENDING in labels), None)
    if pending:
        with asking("secretsmanager:UpdateSecretVersionStage", f"secret {secret_id}"):
            secretsmanager.update_secret_version_stage(
                SecretId=secret_id, VersionStage=PENDING, RemoveFromVersionId=pending
            )
    finished = pending and {CURRENT, PREVIOUS} & set(state.stages[pending])
    cancelled = None if finished else pending
    value: dict[str, Any] = {"api_key": api_key, "installation_secret_id": installation_arn}
    if found is not None:
        value["api_key_id"] = found.id
    with asking("secretsmanager:PutSecretValue", f"secret {secret_id}"):
        secretsmanager.put_secret_value(SecretId=secret_id, SecretString=json.dumps(value))
    return cancelled
