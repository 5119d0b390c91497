"""``make demo``: two real rotations of a Kion installation's SES SMTP credential, on loopback,
a rollback, then a renewal of Kion's App API key by the daily watch and one more rotation on the
new key.

It starts AWS (moto), SES SMTP and Kion stand-ins on free loopback ports, sets an installation up
the way the CDK stack does (Kion already sending with a hand-made key), then rotates twice with
``ses-smtp-rotator rotate --wait`` (Secrets Manager's stand-in invokes the deployed handler once
per step, in its own process) and proves the outcome of each: the replaced key deactivated, with
the date it will be deleted. The second rotation ends the first one's rollback window (IAM allows
two keys). ``ses-smtp-rotator rollback`` then puts the first rotation's key back. Then the Kion API
key nears the end
of its life, the watch renews it (a new key, then the old one deleted), and a third rotation runs
on the new key; ``status`` asks the watch for Kion's side. It stops every server it started, also
on Ctrl-C or failure. Exit code 0 only when every check holds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import TextIO

from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.errors import RotationError
from ses_smtp_rotator.functions.retired_keys import retired_keys
from ses_smtp_rotator.functions.services.kion_keys import KionKeyClient
from ses_smtp_rotator.functions.services.ses_smtp import SmtpEndpoint, try_login

from ..cli.aws_access import AwsAccess, SetupError, open_aws
from ..cli.commands import rollback as rollback_command
from ..cli.commands import rotate as rotate_command
from ..cli.commands import status as status_command
from ..cli.installation_status import gather
from ..cli.secret_state import read_state
from .environment import REGION, WATCH_NAME, DemoEnvironment, RemoteKion
from .onboarding import show_onboarding
from .other_account import rotate_in_another_account

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
KION_API_KEY_VARIABLE = "KION_API_KEY"
DAY = 86_400
# setSecret's proof that SES accepts a new key: its logins must span SES_ACCEPT_MIN_SPAN_SECONDS
# (the stack keeps the default). The demo shortens the span, and says so, so it starts fast.
DEMO_ACCEPT_SPAN_SECONDS = 0.5


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ses_smtp_rotator.demo",
        description="Run two real rotations of a Kion installation's SES SMTP credential "
        "against loopback stand-ins of AWS, SES SMTP and Kion, and prove the outcome.",
        epilog="exit codes: 0 every check holds, 1 a rotation or a check failed, 2 bad command "
        "line, 130 interrupted. Every server the demo starts is stopped when it ends.",
    )
    parser.add_argument(
        "--propagation-delay",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="how long the SES stand-in refuses a new key (default 0.5)",
    )
    parser.add_argument(
        "--rotations", type=int, default=2, metavar="N", help="rotations to run (default 2)"
    )
    parser.add_argument(
        "--kion-url",
        metavar="URL",
        help="talk to this Kion (https://...) instead of the stand-in, with the App API key "
        f"from ${KION_API_KEY_VARIABLE}. The demo sets that Kion's SMTP username and password "
        "(only those) to loopback test keys, and puts the originals back at the end when Kion "
        "shows the password; use a staging installation.",
    )
    parser.add_argument(
        "--kion-ca-bundle",
        type=Path,
        metavar="PEM_FILE",
        help="CA certificate(s) to trust for --kion-url (default: the system's CAs)",
    )
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="after the rotations, keep the servers up (until Ctrl-C) to try ses-smtp-rotator",
    )
    return parser


@dataclass
class Narrator:
    """Prints the demo's story, flushed line by line."""

    out: TextIO

    def say(self, line: str = "") -> None:
        print(line, file=self.out, flush=True)

    def heading(self, line: str) -> None:
        self.say()
        self.say(line)

    def item(self, line: str) -> None:
        self.say(f"  {line}")

    def check(self, holds: bool, line: str) -> bool:
        self.say(f"  {'✓' if holds else '✗'} {line}")
        return holds


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    story = Narrator(out or sys.stdout)
    try:
        remote = _remote_kion(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    previous_handler = _stop_on_sigterm()
    began = time.monotonic()
    environment = DemoEnvironment(
        propagation_delay=args.propagation_delay,
        remote_kion=remote,
        with_watch=True,
        function_environment={"SES_ACCEPT_MIN_SPAN_SECONDS": f"{DEMO_ACCEPT_SPAN_SECONDS:g}"},
    )
    try:
        environment.start(story.item, story.heading)
        story.item(_shortened_span())
        os.environ.update(environment.aws_environment())
        story.heading("Onboarding: adopt and check, before the first rotation")
        onboarded = show_onboarding(environment, story.item, story.check)
        held = _rotate_and_prove(environment, args.rotations, story) and onboarded
        if held and not args.keep_running:
            environment.stop()
            story.heading("Another account: an installation whose SES user is elsewhere")
            held = rotate_in_another_account(args.propagation_delay, story.item, story.check)
        took = time.monotonic() - began
        if held and args.keep_running:
            _serve(environment, story)
        story.say()
        if held:
            story.say(
                f"✓ {args.rotations + 1} rotation(s), "
                + ("a rollback " if args.rotations > 1 else "")
                + "and a Kion API key renewal proven in "
                f"{took:.1f} s."
            )
            return EXIT_OK
        story.say(f"✗ The demo found a problem (see ✗ above), after {took:.1f} s.")
        return EXIT_FAILED
    except KeyboardInterrupt:
        story.say("\nInterrupted.")
        return EXIT_INTERRUPTED
    except (SetupError, RotationError) as error:
        story.say(f"✗ {error}")
        return EXIT_FAILED
    finally:
        environment.stop()
        for note in environment.notes:
            story.say(note)
        story.say("Stopped every server the demo started.")
        signal.signal(signal.SIGTERM, previous_handler)


def _shortened_span() -> str:
    default = RotationConfig()
    return (
        f"Shortened for the demo: setSecret's {default.ses_accept_logins} accepted logins span "
        f"{DEMO_ACCEPT_SPAN_SECONDS:g} s, not {default.ses_accept_min_span:g} s as deployed "
        "(SES_ACCEPT_MIN_SPAN_SECONDS)"
    )


def _rotate_and_prove(environment: DemoEnvironment, rotations: int, story: Narrator) -> bool:
    installation = environment.installation
    assert installation is not None
    aws = open_aws(installation.secret_arn, profile=None, region=None)
    for number in range(1, rotations + 1):
        # From the second rotation on, IAM's two keys are the current one and the one still in
        # its rollback window: the operator ends that window to make room.
        ending = number > 1
        story.say()
        story.say(
            f"Rotation {number}: ses-smtp-rotator rotate {installation.secret_name} --wait"
            + (" --end-rollback-window" if ending else "")
        )
        if not _rotation(environment, aws, story, end_rollback_window=ending):
            return False
    if rotations > 1 and not _rollback(environment, aws, story):
        return False
    if not _wrong_region_then_fixed(environment, aws, story):
        return False
    if not _renewal(environment, aws, story):
        return False
    story.say()
    story.say(
        f"Rotation {rotations + 1}, on the new Kion API key: ses-smtp-rotator rotate "
        f"{installation.secret_name} --wait --end-rollback-window"
    )
    if not _rotation(environment, aws, story, end_rollback_window=True):
        return False
    story.say()
    story.say(f"Status: ses-smtp-rotator status {installation.secret_name} --check-smtp")
    status = gather(aws, installation.secret_arn, check_smtp=True)
    status_command.render(status, story.out)
    return status_command.exit_code(status) == EXIT_OK


def _rotation(
    environment: DemoEnvironment, aws: AwsAccess, story: Narrator, *, end_rollback_window: bool
) -> bool:
    """One rotation through the command line, then the proof of its outcome."""
    assert environment.installation is not None
    assert environment.kion is not None
    assert environment.hook is not None
    assert environment.smtp
    secret_arn = environment.installation.secret_arn
    secretsmanager = aws.client("secretsmanager")
    before_version = _current(secretsmanager, secret_arn)[0]
    replaced_key = environment.kion.smtp_credential()[0]
    attempts_before = len(environment.smtp.auth_attempts)
    code = rotate_command.rotate(
        aws,
        secret_arn,
        wait=True,
        timeout=60,
        poll=0.2,
        out=story.out,
        end_rollback_window=end_rollback_window,
    )
    environment.hook.wait_idle(timeout=30)  # finishSecret's last clean-up, before proving
    refused = sum(
        attempt.outcome == "propagating"
        for attempt in environment.smtp.auth_attempts[attempts_before:]
    )
    if refused:
        story.item(f"(SES refused the new key {refused} time(s) while it propagated)")
    if code != rotate_command.EXIT_OK:
        return story.check(False, f"the rotation ended with exit code {code}")
    version, new_key, password = _current(secretsmanager, secret_arn)
    kion_username, kion_password = environment.kion.smtp_credential()
    keys = _key_statuses(aws, environment.installation.iam_user_name)
    endpoint = SmtpEndpoint(
        environment.smtp.host, environment.smtp.port, False, environment.smtp.ca_pem, timeout=5
    )
    # A Kion that hides its password: prove the AWSCURRENT one, which Kion's username matches.
    login_password = kion_password if kion_password is not None else password
    results = [
        story.check(
            version != before_version, f"AWSCURRENT moved: version {before_version} → {version}"
        ),
        story.check(
            bool(new_key) and kion_username == new_key,
            f"Kion's SMTP username is the new key {new_key} (Kion: {kion_username or 'empty'})",
        ),
        story.check(
            try_login(endpoint, kion_username, login_password or ""),
            "SES accepts the credential Kion is configured with",
        ),
        _retired_check(environment, aws, story, replaced_key, keys),
    ]
    return all(results)


WRONG_REGION_HOST = "email-smtp.eu-west-1.amazonaws.com"


def _wrong_region_then_fixed(environment: DemoEnvironment, aws: AwsAccess, story: Narrator) -> bool:
    """A mistake an operator meets, and its recovery: Kion's SMTP host is changed to SES in
    another region, where the installation's credential cannot work. ``status`` names it with
    its fix, and is clean again once Kion points back (on the stand-in only: the demo never
    edits your Kion's SMTP settings)."""
    installation = environment.installation
    server = environment.kion_server
    assert installation is not None
    if server is None:
        return True
    story.say()
    story.say("A mistake and its fix: Kion pointed at SES in another region")
    right_host = server.app_config["smtp_host"]
    server.app_config["smtp_host"] = WRONG_REGION_HOST
    story.item(f"Someone sets Kion's SMTP host to {WRONG_REGION_HOST} (SES in eu-west-1)")
    story.say(f"Status: ses-smtp-rotator status {installation.secret_name}")
    wrong = gather(aws, installation.secret_arn, check_smtp=False)
    status_command.render(wrong, story.out)
    caught = story.check(
        "kion_endpoint" in wrong.problems and status_command.exit_code(wrong) == EXIT_FAILED,
        "status names the mismatch, its cause and its fix (exit 1) before any rotation meets it",
    )
    server.app_config["smtp_host"] = right_host
    story.item(f"The fix: Kion's SMTP host back to {right_host}, SES in {REGION}")
    fixed = gather(aws, installation.secret_arn, check_smtp=False)
    recovered = story.check(
        "kion_endpoint" not in fixed.problems and status_command.exit_code(fixed) == EXIT_OK,
        f"status is clean again: {fixed.checks['kion_endpoint'].summary}"
        if "kion_endpoint" in fixed.checks
        else "status is clean again",
    )
    return caught and recovered


def _rollback(environment: DemoEnvironment, aws: AwsAccess, story: Narrator) -> bool:
    """``ses-smtp-rotator rollback``: the rotation function puts the key the last rotation
    replaced back into Kion and AWSCURRENT, and retires the key it rolled back from."""
    installation = environment.installation
    assert installation is not None
    assert environment.kion is not None
    secretsmanager = aws.client("secretsmanager")
    previous = secretsmanager.get_secret_value(
        SecretId=installation.secret_arn, VersionStage="AWSPREVIOUS"
    )
    previous_key = json.loads(previous["SecretString"])["username"]
    rolled_back_from = environment.kion.smtp_credential()[0]
    story.say()
    story.say(f"Rollback: ses-smtp-rotator rollback {installation.secret_name} --yes")
    state = read_state(secretsmanager, installation.secret_arn)
    code = rollback_command.roll_back(aws, state, out=story.out)
    if code != EXIT_OK:
        return story.check(False, f"the rollback ended with exit code {code}")
    current_key = _current(secretsmanager, installation.secret_arn)[1]
    kion_username = environment.kion.smtp_credential()[0]
    keys = _key_statuses(aws, installation.iam_user_name)
    results = [
        story.check(
            kion_username == previous_key == current_key,
            f"Kion and AWSCURRENT are back on {previous_key} (Kion: {kion_username})",
        ),
        story.check(keys.get(previous_key) == "Active", f"{previous_key} is Active again"),
        _retired_check(environment, aws, story, rolled_back_from, keys),
    ]
    return all(results)


def _retired_check(
    environment: DemoEnvironment,
    aws: AwsAccess,
    story: Narrator,
    retired_key: str,
    keys: dict[str, str],
) -> bool:
    """The key a rotation (or rollback) replaced is Inactive and recorded, with its deletion
    date (the end of its rollback window)."""
    assert environment.installation is not None
    described = aws.client("secretsmanager").describe_secret(
        SecretId=environment.installation.secret_arn
    )
    records = retired_keys({tag["Key"]: tag["Value"] for tag in described.get("Tags", [])})
    record = records.get(retired_key)
    grace_days = float(environment.function_environment.get("PREVIOUS_KEY_GRACE_DAYS", 7))
    when = (
        f"deleted after {record.window_ends(timedelta(days=grace_days)):%Y-%m-%d %H:%M} UTC"
        if record
        else "no retirement record"
    )
    others = ", ".join(f"{key} {status}" for key, status in sorted(keys.items()))
    return story.check(
        keys.get(retired_key) == "Inactive" and record is not None,
        f"the replaced key {retired_key} is Inactive, {when} (IAM: {others})",
    )


def _key_statuses(aws: AwsAccess, user_name: str) -> dict[str, str]:
    listed = aws.client("iam").list_access_keys(UserName=user_name)["AccessKeyMetadata"]
    return {key["AccessKeyId"]: key["Status"] for key in listed}


def _renewal(environment: DemoEnvironment, aws: AwsAccess, story: Narrator) -> bool:
    """The Kion API key nears the end of its life; the watch renews it: a new key, then the old
    one deleted. From another Kion, the key renewed is one the demo made, never the one given."""
    installation = environment.installation
    assert installation is not None
    assert environment.kion is not None
    assert environment.renewal_hook is not None
    secretsmanager = aws.client("secretsmanager")
    key_secret = installation.kion_api_key_secret_arn
    old = _stored_key(secretsmanager, key_secret)
    story.say()
    story.say(f"Kion API key renewal: {installation.kion_api_key_secret_name}")
    server = environment.kion_server
    if server is not None:
        lifespan = float(server.app_config.get("app_api_key_lifespan") or 30)
        record = server.api_keys.records[old["api_key_id"]]
        record.created_at = server.clock() - lifespan * DAY * 2 / 3
        story.item(
            f"The key ({old['api_key_id']}) nears the end of its life: made "
            f"{lifespan * 2 / 3:.0f} days ago of {lifespan:.0f} (the stand-in's clock)"
        )
        server.request_log.clear()
        report = _invoke_watch(aws, {})
        started = (
            installation.kion_api_key_secret_name
            if key_secret in report.get("renewals_started", [])  # type: ignore[operator]
            else "none"
        )
        story.item(
            f"The daily watch ({WATCH_NAME}) checked {report.get('installations')} "
            f"installation(s) and started the renewal of: {started}"
        )
    else:
        story.item(
            f"The key the demo made in your Kion ({old['api_key_id']}) is not due yet; the demo "
            "starts its renewal as the watch does when it is (RotateSecret on the key's secret)"
        )
        secretsmanager.rotate_secret(SecretId=key_secret)
    environment.renewal_hook.wait_idle(timeout=60)
    if environment.renewal_hook.failures:
        failure = environment.renewal_hook.failures[-1]
        return story.check(False, f"the renewal failed in {failure.step}: {failure.error}")
    new = _stored_key(secretsmanager, key_secret)
    kion = KionKeyClient(
        environment.kion.url,
        new["api_key"],
        api_key_secret_id=installation.kion_api_key_secret_name,
        ca_pem=environment.kion.ca_pem,
    )
    results = [
        story.check(
            new["api_key_id"] != old["api_key_id"],
            f"AWSCURRENT of the key's secret holds the new key {new['api_key_id']} "
            f"(was {old['api_key_id']})",
        ),
        story.check(
            isinstance(kion.app_config(), dict), "Kion accepts the new key (GET app-config)"
        ),
        story.check(
            kion.find_key(old["api_key_id"]) is None,
            f"Kion no longer has the old key {old['api_key_id']}",
        ),
    ]
    if server is not None:
        calls = [(r.method, r.path) for r in server.request_log if "app-api-key" in r.path]
        created = ("POST", "/api/v3/app-api-key")
        deleted = ("DELETE", f"/api/v3/app-api-key/{old['api_key_id']}")
        results.append(
            story.check(
                created in calls
                and deleted in calls
                and calls.index(created) < calls.index(deleted),
                f"Kion saw {' '.join(created)}, then {' '.join(deleted)}",
            )
        )
    return all(results)


def _invoke_watch(aws: AwsAccess, event: dict[str, object]) -> dict[str, object]:
    """Invoke the watch as its schedule does (Lambda Invoke)."""
    reply = aws.client("lambda").invoke(FunctionName=WATCH_NAME, Payload=json.dumps(event).encode())
    answer = json.loads(reply["Payload"].read())
    if reply.get("FunctionError"):
        raise SetupError(
            f"The watch failed: {answer.get('errorType')}: {answer.get('errorMessage')}",
            f"See the log group /aws/lambda/{WATCH_NAME}.",
        )
    return answer


def _stored_key(secretsmanager: object, key_secret: str) -> dict[str, object]:
    value = secretsmanager.get_secret_value(  # type: ignore[attr-defined]
        SecretId=key_secret, VersionStage="AWSCURRENT"
    )
    return json.loads(value["SecretString"])


def _current(secretsmanager: object, secret_arn: str) -> tuple[str, str, str]:
    value = secretsmanager.get_secret_value(  # type: ignore[attr-defined]
        SecretId=secret_arn, VersionStage="AWSCURRENT"
    )
    fields = json.loads(value["SecretString"])
    return value["VersionId"], fields.get("username", ""), fields.get("password", "")


def _serve(environment: DemoEnvironment, story: Narrator) -> None:
    assert environment.installation is not None
    exports = " ".join(f"{name}={value}" for name, value in environment.aws_environment().items())
    name = environment.installation.secret_name
    story.say()
    story.say("The servers stay up until Ctrl-C. In another shell, try:")
    story.item(f"export {exports}")
    command = Path(sys.executable).parent / "ses-smtp-rotator"
    with contextlib.suppress(ValueError):  # outside the working directory: the full path
        command = command.relative_to(Path.cwd())
    story.item(f"{command} list")
    story.item(f"{command} status --all")
    story.item(f"{command} status {name} --check-smtp")
    story.item(f"{command} history {environment.installation.name}")
    story.item(f"{command} rotate {name} --wait --poll 0.5")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        story.say()


def _remote_kion(args: argparse.Namespace) -> RemoteKion | None:
    if not args.kion_url:
        if args.kion_ca_bundle:
            raise ValueError("--kion-ca-bundle goes with --kion-url")
        return None
    if not args.kion_url.startswith("https://"):
        raise ValueError("--kion-url must be an https:// address")
    api_key = os.environ.get(KION_API_KEY_VARIABLE, "").strip()
    if not api_key:
        raise ValueError(
            f"--kion-url needs Kion's App API key in the environment variable "
            f"{KION_API_KEY_VARIABLE} (it is never taken from the command line)."
        )
    ca_pem = None
    if args.kion_ca_bundle:
        try:
            ca_pem = args.kion_ca_bundle.read_text()
        except OSError as error:
            raise ValueError(f"cannot read --kion-ca-bundle: {error.strerror}") from None
    return RemoteKion(args.kion_url.rstrip("/"), api_key, ca_pem)


def _stop_on_sigterm() -> signal.Handlers | object:
    """Make SIGTERM stop the demo like Ctrl-C, so the servers are stopped either way; and make
    Ctrl-C work even when the demo was started with SIGINT ignored (a background job)."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    return signal.signal(signal.SIGTERM, interrupt)
