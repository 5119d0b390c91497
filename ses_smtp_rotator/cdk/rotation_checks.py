"""The checks of ``SesSmtpRotation``'s own keyword arguments.

The construct runs them on what it is given. ``context_settings`` runs the same checks on what
cdk.json gives and tells a failure in cdk.json's words (``logLevel`` where the construct says
``log_level``), so a team that uses the construct and one that edits cdk.json read the same
problem and the same fix. A failure raises ``PropertyError``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import NoReturn

from ses_smtp_rotator.schedule import check_expression

from .accounts import ORGANIZATION_ID
from .function import LOG_LEVELS, required_timeout
from .installation import PropertyError
from .watch import DEFAULT_WATCH_SCHEDULE

OWNER = "SesSmtpRotation"
LAMBDA_TIMEOUT_LIMIT_SECONDS = 900
LAMBDA_MEMORY_MIB = (128, 10240)
EMAIL_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def check_rotation_props(
    *,
    log_level: str,
    timeout_seconds: int,
    ses_accept_timeout_seconds: int,
    watch_schedule: str,
    alarm_email: str | None = None,
    https_egress_cidrs: Sequence[str] = (),
    smtp_egress_cidrs: Sequence[str] = (),
    memory_size: int = 256,
    organization_id: str | None = None,
    cross_account: bool = False,
) -> None:
    """Refuse the first property that cannot work, naming it, its value and the fix.
    ``cross_account``: some installation's SES user is in another account than the stack's."""
    if log_level not in LOG_LEVELS:
        _refuse(
            "log_level", log_level, "is not a choice here", f"use one of {', '.join(LOG_LEVELS)}"
        )
    _check_timeouts(timeout_seconds, ses_accept_timeout_seconds)
    low, high = LAMBDA_MEMORY_MIB
    if not low <= memory_size <= high:
        _refuse(
            "memory_size",
            memory_size,
            f"is outside {low}..{high}",
            f"use a number in {low}..{high}",
        )
    _check_watch_schedule(watch_schedule)
    if alarm_email is not None and not EMAIL_ADDRESS.match(alarm_email):
        _refuse(
            "alarm_email", alarm_email, "is not an e-mail address", "write e.g. ops@example.com"
        )
    _check_organization(organization_id, cross_account)
    for prop, cidrs in (
        ("https_egress_cidrs", https_egress_cidrs),
        ("smtp_egress_cidrs", smtp_egress_cidrs),
    ):
        for cidr in cidrs:
            try:
                ipaddress.IPv4Network(cidr)
            except ValueError:
                _refuse(prop, cidr, "is not an IPv4 CIDR block", "write e.g. 10.0.0.0/16")


def _check_timeouts(timeout: int, wait: int) -> None:
    if wait < 1:
        _refuse("ses_accept_timeout", wait, "is outside >= 1", "use a number in >= 1")
    if not 1 <= timeout <= LAMBDA_TIMEOUT_LIMIT_SECONDS:
        bounds = f"1..{LAMBDA_TIMEOUT_LIMIT_SECONDS}"
        _refuse("timeout", timeout, f"is outside {bounds}", f"use a number in {bounds}")
    step, needed = required_timeout(wait)
    if timeout < needed:
        problem = (
            f"does not cover {step} at its slowest ({needed} s with ses_accept_timeout {wait} and "
            "the Kion and SMTP timeouts and retries), so a step could be cut off mid-way"
        )
        if needed <= LAMBDA_TIMEOUT_LIMIT_SECONDS:
            _refuse(
                "timeout",
                timeout,
                problem,
                f"raise it to {needed} or more, or lower ses_accept_timeout",
            )
        lowest = max(1, wait - (needed - LAMBDA_TIMEOUT_LIMIT_SECONDS))
        _refuse("timeout", timeout, problem, f"lower ses_accept_timeout to {lowest} or less")


def _check_organization(organization_id: str | None, cross_account: bool) -> None:
    fix = (
        "write the id of the AWS Organization the SES accounts belong to, o- and 10-32 "
        "lowercase letters or digits (aws organizations describe-organization shows it)"
    )
    if organization_id is not None and not (
        isinstance(organization_id, str) and ORGANIZATION_ID.match(organization_id)
    ):
        _refuse("organization_id", organization_id, "is not an AWS Organizations id", fix)
    if cross_account and organization_id is None:
        _refuse(
            "organization_id",
            organization_id,
            "is needed when an installation's ses_account is not the stack's: the functions "
            "may assume the deployment's access role in the accounts of this organisation only",
            fix,
        )


def _check_watch_schedule(expression: str) -> None:
    fix = f"write a recurring expression in UTC, e.g. {DEFAULT_WATCH_SCHEDULE} (daily at 06:00)"
    try:
        check_expression(expression)
    except ValueError as problem:
        _refuse("watch_schedule", expression, str(problem), fix)
    if expression.strip().startswith("at("):
        _refuse("watch_schedule", expression, "runs once; the watch must recur", fix)


def _refuse(prop: str, value: object, problem: str, fix: str) -> NoReturn:
    raise PropertyError(OWNER, prop, value, problem, fix)
