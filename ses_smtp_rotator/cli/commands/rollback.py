"""``ses-smtp-rotator rollback INSTALLATION``: go back to the key the last rotation replaced.

The rotation function does the work (``functions/smtp_rotation/rollback.py``): this command
shows what will change, asks, invokes the function with the AWSCURRENT version it showed, and
prints what the function did. So the operator needs ``lambda:InvokeFunction`` on the rotation
function and nothing in IAM or Kion, as the stack's operator policy has it.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from botocore.exceptions import ReadTimeoutError

from ses_smtp_rotator.cli.aws_access import AwsAccess, asking, open_aws, region_of_arn
from ses_smtp_rotator.cli.exit_codes import (
    EPILOG,
    EXIT_FAILED,
    EXIT_IN_PROGRESS,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    HelpFormatter,
)
from ses_smtp_rotator.cli.fleet import secret_id_for
from ses_smtp_rotator.cli.rotation_function import describe_function
from ses_smtp_rotator.cli.secret_state import (
    CURRENT,
    SecretState,
    read_state,
    require_installation_secret,
)

ROLLBACK_EVENT_ACTION = "rollback"
_ANSWER_MARGIN_SECONDS = 30  # beyond the function's timeout, before giving up on its answer


def register(commands: argparse._SubParsersAction, aws_options: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "rollback",
        parents=[aws_options],
        help="go back to the key the last rotation replaced, within its grace window",
        description="Roll an installation back to the access key its last rotation replaced, "
        "while that key's grace window runs: the rotation function reactivates it, proves that "
        "SES accepts it where Kion sends (the logins and the message setSecret requires), puts "
        "it back into Kion and reads Kion back, makes it AWSCURRENT again, and deactivates the "
        "key rolled back from (which then has a grace window of its own). Run again after any "
        "failure, it finishes what it started; run again after it finished, it says so. "
        "Refused (exit 1, nothing changed, Kion keeps a working key) when the previous key is "
        "gone, was never this installation's, was reactivated by hand, its window has passed, "
        "or Kion refuses the change; exit 3 while a rotation is unfinished; exit 4 when the "
        "function's answer did not come in time. Asks before acting unless --yes. Needs "
        "secretsmanager:DescribeSecret and GetSecretValue on the installation secret and "
        "lambda:InvokeFunction on the rotation function (no IAM or Kion access).",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "secret",
        metavar="INSTALLATION",
        help="the installation secret's name or ARN, or the installation's name",
    )
    parser.add_argument("--yes", action="store_true", help="do not ask before rolling back")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    aws = open_aws(args.secret, profile=args.profile, region=args.region)
    secretsmanager = aws.client("secretsmanager")
    state = read_state(secretsmanager, secret_id_for(secretsmanager, args.secret))
    require_installation_secret(state)
    if not args.yes and not _confirmed(state, _current(secretsmanager, state)[1]):
        print("Nothing changed.")
        return EXIT_USAGE
    return roll_back(aws, state)


def roll_back(aws: AwsAccess, state: SecretState, out: TextIO | None = None) -> int:
    """Invoke the rotation function to roll ``state``'s installation back from the AWSCURRENT
    version it holds now; print what it did to ``out``; return the exit code."""
    out = out or sys.stdout
    assert state.function_arn is not None
    current_version, _ = _current(aws.client("secretsmanager"), state)
    function_region = region_of_arn(state.function_arn)
    function = describe_function(aws.client("lambda", function_region), state.function_arn)
    wait = function.timeout.total_seconds() + _ANSWER_MARGIN_SECONDS
    client = aws.client("lambda", function_region, read_timeout=wait, attempts=1)
    event = {"Action": ROLLBACK_EVENT_ACTION, "SecretId": state.arn}
    if current_version:
        event["FromVersionId"] = current_version
    print(f"Rolling back {state.name} (the rotation function proves the key first) ...", file=out)
    try:
        with asking("lambda:InvokeFunction", f"function {state.function_arn}"):
            reply = client.invoke(
                FunctionName=state.function_arn,
                InvocationType="RequestResponse",
                Payload=json.dumps(event).encode(),
            )
    except ReadTimeoutError:
        print(
            f"✗ No answer from the rotation function within {wait:.0f} s; it may still be "
            f"rolling back.\n  Next: ses-smtp-rotator rollback {state.name} again (it picks up "
            "where it stopped, or says it is done).",
            file=out,
        )
        return EXIT_TIMEOUT
    answer = json.loads(reply["Payload"].read() or b"null")
    return _report(state, reply.get("FunctionError"), answer, out)


def _current(secretsmanager: Any, state: SecretState) -> tuple[str, str]:
    """AWSCURRENT's version id and access key id (the password is not looked at)."""
    with asking("secretsmanager:GetSecretValue", f"secret {state.arn}"):
        value = secretsmanager.get_secret_value(SecretId=state.arn, VersionStage=CURRENT)
    try:
        username = json.loads(value.get("SecretString") or "{}").get("username") or ""
    except (ValueError, AttributeError):
        username = ""
    return value.get("VersionId", ""), username if isinstance(username, str) else ""


def _confirmed(state: SecretState, current_key: str) -> bool:
    if not sys.stdin.isatty():
        print("error: not a terminal, so nobody can confirm.\n  Fix: pass --yes.", file=sys.stderr)
        return False
    answer = input(
        f"Roll {state.name} back from key {current_key or '(none)'} to the key it replaced? "
        "Kion gets the previous key once SES accepts it. [y/N] "
    )
    return answer.strip().lower() in ("y", "yes")


def _report(state: SecretState, function_error: str | None, answer: Any, out: TextIO) -> int:
    if function_error or not isinstance(answer, dict) or "outcome" not in answer:
        error_type = answer.get("errorType", "an error") if isinstance(answer, dict) else "?"
        message = answer.get("errorMessage", "") if isinstance(answer, dict) else ""
        print(
            f"✗ The rotation function failed ({error_type}): {message}\n"
            f"  Its log group (/aws/lambda/{state.function_name}) has the details; run the "
            "rollback again once the cause is fixed (it picks up where it stopped).",
            file=out,
        )
        return EXIT_FAILED
    outcome = answer["outcome"]
    if outcome == "refused":
        print(
            f"✗ Rollback refused: {answer.get('cause', '')}\n  Fix: {answer.get('fix', '')}",
            file=out,
        )
        in_progress = answer.get("error") == "RotationInProgressError"
        return EXIT_IN_PROGRESS if in_progress else EXIT_FAILED
    restored = answer.get("restored_access_key_id", "?")
    retired = answer.get("retired_access_key_id", "?")
    deletion = str(answer.get("retired_deletion_after", "?"))[:16].replace("T", " ")
    done = "Already rolled back" if outcome == "already-rolled-back" else "Rolled back"
    print(
        f"✓ {done}: Kion and AWSCURRENT of {state.name} use key {restored} again (SES accepted "
        f"it where Kion sends).\n"
        f"  Key {retired} is Inactive; it is deleted after {deletion} UTC. Until then, "
        f"ses-smtp-rotator rollback {state.name} brings it back.",
        file=out,
    )
    return EXIT_OK
