"""``status``/``rotate`` over several installations: ``--all``, names, globs, ``--deployment``.
One summary table (or ``--json``), and the worst exit code of the installations.
"""

from __future__ import annotations

import argparse
import io
import json
import queue
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ses_smtp_rotator.cli import fleet_report
from ses_smtp_rotator.cli.aws_access import AwsAccess, SetupError, open_aws
from ses_smtp_rotator.cli.commands import rotate as rotate_command
from ses_smtp_rotator.cli.commands import status as status_command
from ses_smtp_rotator.cli.dry_run import dry_run
from ses_smtp_rotator.cli.exit_codes import (
    EXIT_OK,
    EXIT_SETUP,
    EXIT_USAGE,
    worst,
)
from ses_smtp_rotator.cli.fleet import (
    DEPLOYMENT_TAG,
    INSTALLATION_TAG,
    Installation,
    is_pattern,
    list_installations,
)
from ses_smtp_rotator.cli.fleet import select as select_installations
from ses_smtp_rotator.cli.fleet_report import Outcome, Target
from ses_smtp_rotator.cli.installation_status import gather
from ses_smtp_rotator.cli.pacing import ROTATE_SECRET_RATE, RatePacer

DEFAULT_PARALLEL = 4
# -- the command line ---------------------------------------------------------------------------


def add_selection(parser: argparse.ArgumentParser) -> None:
    """The options that select installations, shared by ``status`` and ``rotate``."""
    group = parser.add_argument_group("several installations")
    group.add_argument(
        "--all",
        action="store_true",
        help=f"every installation: the secrets tagged {INSTALLATION_TAG} in the region",
    )
    group.add_argument(
        "--deployment",
        metavar="NAME",
        help=f"only installations whose secrets carry {DEPLOYMENT_TAG}=NAME or whose stack is "
        "NAME (aws:cloudformation:stack-name)",
    )
    group.add_argument(
        "--parallel",
        type=_at_least_one,
        default=DEFAULT_PARALLEL,
        metavar="N",
        help=f"installations worked on at once (default {DEFAULT_PARALLEL})",
    )


def is_fleet(args: argparse.Namespace) -> bool:
    """Whether the command line names several installations (or asks for the summary form)."""
    secrets: list[str] = args.secret
    return (
        args.all
        or args.deployment is not None
        or len(secrets) != 1
        or any(is_pattern(secret) for secret in secrets)
        or (args.command == "rotate" and args.json)
    )


def require_selection(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not args.secret and not args.all and args.deployment is None:
        parser.error("name a SECRET (name, ARN or glob), or pass --all or --deployment NAME")


def run_status(args: argparse.Namespace) -> int:
    targets = resolve_targets(args)

    def one(target: Target) -> Outcome:
        aws = open_aws(target.secret_id, profile=args.profile, region=args.region)
        status = gather(
            aws,
            target.secret_id,
            check_smtp=args.check_smtp,
            use_watch=args.use_watch,
            log_group=args.log_group,
        )
        code = status_command.exit_code(status)
        return Outcome(
            target, code, fleet_report.status_detail(status), report=status.to_document()
        )

    outcomes = run_each(targets, one, parallel=args.parallel)
    code = worst(outcome.exit_code for outcome in outcomes)
    if args.json:
        print(
            json.dumps(
                fleet_report.fleet_document(outcomes, code, args),
                indent=2,
                default=fleet_report.encode_json,
            )
        )
        return code
    rows = [
        (
            outcome.target.name,
            fleet_report.STATUS_RESULTS.get(outcome.exit_code, str(outcome.exit_code)),
            str((outcome.report or {}).get("access_key_id") or "-"),
            fleet_report.age((outcome.report or {}).get("key_age_days")),
            fleet_report.date((outcome.report or {}).get("last_rotated")),
            outcome.detail,
        )
        for outcome in outcomes
    ]
    fleet_report.table(
        ("INSTALLATION", "RESULT", "KEY", "KEY AGE", "LAST ROTATION", "DETAIL"), rows, sys.stdout
    )
    fleet_report.totals(outcomes, code, fleet_report.STATUS_RESULTS, sys.stdout)
    return code


def run_rotate(args: argparse.Namespace) -> int:
    targets = resolve_targets(args)
    if args.dry_run:
        for target in targets:
            aws = open_aws(target.secret_id, profile=args.profile, region=args.region)
            print(dry_run(aws, target.secret_id))
        return EXIT_OK
    several = (
        args.all
        or args.deployment is not None
        or len(targets) > 1
        or any(is_pattern(secret) for secret in args.secret)
    )
    if several and not args.yes and not _confirmed(targets):
        return EXIT_USAGE
    progress = sys.stderr if args.json else sys.stdout
    lock = threading.Lock()
    # One pacer for the whole command: however many run at once, RotateSecret stays under
    # Secrets Manager's quota of 50 a second in the region.
    pacer = RatePacer(ROTATE_SECRET_RATE)
    shared = SharedAccess(args.profile, args.region)

    def one(target: Target) -> Outcome:
        aws = shared.for_secret(target.secret_id)
        printed = io.StringIO()
        code = rotate_command.rotate(
            aws,
            target.secret_id,
            wait=args.wait,
            timeout=args.timeout,
            poll=args.poll,
            log_group=args.log_group,
            out=printed,
            end_rollback_window=args.end_rollback_window,
            pace=pacer.wait,
        )
        return Outcome(
            target, code, fleet_report.rotate_detail(printed.getvalue()), output=printed.getvalue()
        )

    def done(outcome: Outcome) -> None:
        with lock:
            result = fleet_report.ROTATE_RESULTS.get(outcome.exit_code, str(outcome.exit_code))
            print(f"  {outcome.target.name}: {result}  {outcome.detail}", file=progress, flush=True)

    print(
        f"{'Rotating' if args.wait else 'Starting rotations of'} {len(targets)} installation(s), "
        f"{min(args.parallel, len(targets))} at a time:",
        file=progress,
        flush=True,
    )
    outcomes = run_each(targets, one, parallel=args.parallel, on_done=done)
    code = worst(outcome.exit_code for outcome in outcomes)
    if args.json:
        print(
            json.dumps(
                fleet_report.fleet_document(outcomes, code, args),
                indent=2,
                default=fleet_report.encode_json,
            )
        )
        return code
    print(file=sys.stdout)
    rows = [
        (
            outcome.target.name,
            fleet_report.ROTATE_RESULTS.get(outcome.exit_code, str(outcome.exit_code)),
            outcome.detail,
        )
        for outcome in outcomes
    ]
    fleet_report.table(("INSTALLATION", "RESULT", "DETAIL"), rows, sys.stdout)
    fleet_report.totals(outcomes, code, fleet_report.ROTATE_RESULTS, sys.stdout)
    for outcome in outcomes:
        if outcome.exit_code not in (EXIT_OK,) and outcome.output.strip():
            print(f"\n{outcome.target.name}:\n{outcome.output.rstrip()}", file=sys.stdout)
    return code


class SharedAccess:
    """One session and one client per service and region for all the installations of a
    command: a client takes some 0.1 s of CPU to make, which each installation paid again."""

    def __init__(self, profile: str | None, region: str | None) -> None:
        self._profile, self._region = profile, region
        self._accesses: dict[str, _SharedClients] = {}
        self._lock = threading.Lock()

    def for_secret(self, secret_id: str) -> AwsAccess:
        opened = open_aws(secret_id, profile=self._profile, region=self._region)
        with self._lock:
            if opened.region not in self._accesses:
                self._accesses[opened.region] = _SharedClients(opened.session, opened.region)
            return self._accesses[opened.region]


class _SharedClients(AwsAccess):
    """An AwsAccess whose clients are made once (under a lock: making them is not
    thread-safe; using them is)."""

    def __init__(self, session: Any, region: str) -> None:
        super().__init__(session, region)
        self._clients: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str, region: str | None = None, **options: Any) -> Any:
        key = (service, region, tuple(sorted(options.items())))
        with self._lock:
            if key not in self._clients:
                self._clients[key] = super().client(service, region, **options)
            return self._clients[key]


def _confirmed(targets: Sequence[Target]) -> bool:
    """Whether the person at the keyboard agrees to rotate ``targets``; without a terminal to
    ask on, no (scripts pass --yes)."""
    names = ", ".join(target.name for target in targets)
    if not sys.stdin.isatty():
        print(
            f"error: rotating {len(targets)} installation(s) ({names}) needs a confirmation.\n"
            "  Fix: pass --yes to rotate them, or --dry-run to see what each rotation would do.",
            file=sys.stderr,
        )
        return False
    answer = input(f"Rotate {len(targets)} installation(s): {names}? [y/N] ")
    if answer.strip().lower() in ("y", "yes"):
        return True
    print("Nothing was rotated.", file=sys.stderr)
    return False


# -- selection and running ----------------------------------------------------------------------


def resolve_targets(args: argparse.Namespace) -> list[Target]:
    """The installations the command line names. Globs, --all and --deployment list the tagged
    installation secrets; a plain name or ARN that no listed installation has is used as given.
    Raises SetupError when nothing is selected or a glob matches nothing."""
    secrets: list[str] = args.secret
    listing_needed = args.all or args.deployment is not None or any(map(is_pattern, secrets))
    if not listing_needed:
        return [Target(secret, secret) for secret in dict.fromkeys(secrets)]
    aws = open_aws(next(iter(secrets), ""), profile=args.profile, region=args.region)
    installations = listed_installations(aws, args.deployment)
    chosen, unmatched = select_installations(installations, secrets)
    globs = [pattern for pattern in unmatched if is_pattern(pattern)]
    if globs:
        raise SetupError(
            f"No installation{_of(args.deployment)} matches {', '.join(map(repr, globs))} "
            f"in {aws.region}.",
            "`ses-smtp-rotator list` shows the installation names and secrets a glob can match.",
        )
    targets = [Target(item.name, item.secret_arn) for item in chosen]
    targets += [Target(name, name) for name in unmatched]
    return targets


def run_each(
    targets: Sequence[Target],
    work: Callable[[Target], Outcome],
    *,
    parallel: int,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """``work`` on every target, ``parallel`` at a time, in daemon threads (so Ctrl-C ends the
    command at once); outcomes in the targets' order. An error of one target is its outcome."""
    pending: queue.Queue[int] = queue.Queue()
    for index in range(len(targets)):
        pending.put(index)
    finished: queue.Queue[tuple[int, Outcome]] = queue.Queue()

    def worker() -> None:
        while True:
            try:
                index = pending.get_nowait()
            except queue.Empty:
                return
            finished.put((index, _guarded(work, targets[index])))

    for _ in range(min(parallel, len(targets))):
        threading.Thread(target=worker, daemon=True).start()
    outcomes: dict[int, Outcome] = {}
    while len(outcomes) < len(targets):
        index, outcome = finished.get(timeout=None)
        outcomes[index] = outcome
        if on_done is not None:
            on_done(outcome)
    return [outcomes[index] for index in range(len(targets))]


def _guarded(work: Callable[[Target], Outcome], target: Target) -> Outcome:
    try:
        return work(target)
    except SetupError as error:
        return Outcome(
            target, EXIT_SETUP, error.cause, error={"cause": error.cause, "fix": error.fix}
        )
    except ClientError as error:
        details = error.response.get("Error", {})
        cause = (
            f"AWS answered {error.operation_name} with {details.get('Code', 'an error')}: "
            f"{details.get('Message', '')}"
        )
        return Outcome(target, EXIT_SETUP, cause, error={"cause": cause, "fix": ""})
    except BotoCoreError as error:
        cause = f"the AWS call failed before AWS answered ({type(error).__name__})"
        return Outcome(target, EXIT_SETUP, cause, error={"cause": cause, "fix": ""})


def listed_installations(aws: Any, deployment: str | None) -> list[Installation]:
    installations = list_installations(aws.client("secretsmanager"), deployment=deployment)
    if not installations:
        raise SetupError(
            f"No installation secret{_of(deployment)} was found in {aws.region} (secrets tagged "
            f"{INSTALLATION_TAG}).",
            "Check --region (the stack's region) and the deployment or stack name; the stack tags "
            "each installation's secret with its name.",
        )
    return installations


def _of(deployment: str | None) -> str:
    return f" of deployment {deployment}" if deployment else ""


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
