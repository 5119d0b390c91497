"""Telling people what a rotation or rollback did: an SNS notice, and an EventBridge event.

- A notice (SNS, to ``NOTICE_TOPIC_ARN``: the deployment's ``notifyTopicArn``, or its alert
  topic when none is set) after each successful rotation and rollback, naming the installation,
  the key now in use, the key deactivated, when that one will be deleted and the rollback
  command.
- An event (EventBridge ``PutEvents`` on ``EVENT_BUS_NAME``, the default bus) per outcome:
  ``succeeded``, ``failed`` (with the step and the error's type), ``rolled-back`` and
  ``rollback-refused``, with ``source`` ``ses-smtp-rotator``, so teams route them with rules.
- A log record per outcome (``"Outcome: <outcome>"``, its ``outcome_event`` field the event's
  detail and ``event_bus`` the bus it was put on, null when none), whether or not a bus is set:
  ``ses-smtp-rotator history`` reads the outcomes from the function's log group.

Publishing is best effort: a failure is logged and counted (``NoticeFailed``) and never fails
or undoes what was done. No secret goes into either.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from ses_smtp_rotator.functions.installation_metrics import installation_name
from ses_smtp_rotator.functions.services.aws_clients import client
from ses_smtp_rotator.functions.telemetry import logger, metrics

EVENT_SOURCE = "ses-smtp-rotator"
EVENT_DETAIL_TYPE = "SES SMTP credential rotation"
NOTICE_TOPIC_VARIABLE = "NOTICE_TOPIC_ARN"
EVENT_BUS_VARIABLE = "EVENT_BUS_NAME"
OUTCOME_RECORD_FIELD = "outcome_event"
SUCCEEDED, FAILED = "succeeded", "failed"
ROLLED_BACK, ROLLBACK_REFUSED = "rolled-back", "rollback-refused"


@dataclass(frozen=True)
class Outcome:
    """What happened to one installation's credential."""

    secret_id: str
    outcome: str
    current_access_key_id: str = ""
    deactivated_access_key_id: str = ""
    deletion_after: datetime | None = None
    # For a deactivated key this product did not make (the one Kion held at adoption): IAM's
    # last-used record, read before deactivation, so a reader sees whether something else used it.
    deactivated_adopted_last_use: str = ""
    step: str = ""
    error: str = ""

    @property
    def installation(self) -> str:
        return installation_name(self.secret_id)

    def detail(self) -> dict[str, Any]:
        """The event's detail: installation, outcome and keys (ids only, never a secret)."""
        detail: dict[str, Any] = {
            "installation": self.installation,
            "secret_id": self.secret_id,
            "outcome": self.outcome,
            "keys": {
                "current": self.current_access_key_id or None,
                "deactivated": self.deactivated_access_key_id or None,
                "deletion_after": self.deletion_after.isoformat() if self.deletion_after else None,
            },
        }
        if self.deactivated_adopted_last_use:
            detail["keys"]["deactivated_origin"] = "adopted"
            detail["keys"]["deactivated_last_use"] = self.deactivated_adopted_last_use
        if self.step:
            detail["step"] = self.step
        if self.error:
            detail["error"] = self.error
        return detail


def announce(outcome: Outcome) -> None:
    """The event and the log record for every outcome, and the notice for a rotation or
    rollback that succeeded."""
    bus = _put_event(outcome)
    if outcome.outcome in (SUCCEEDED, ROLLED_BACK):
        _publish_notice(outcome)
    logger.info(
        f"Outcome: {outcome.outcome}", **{OUTCOME_RECORD_FIELD: outcome.detail()}, event_bus=bus
    )


def notice_text(outcome: Outcome) -> tuple[str, str]:
    """The notice's subject and message."""
    installation = outcome.installation
    what = "rolled back" if outcome.outcome == ROLLED_BACK else "rotated"
    lines = [
        f"The SES SMTP credential of Kion installation {installation} was {what}.",
        "",
        f"Kion and AWSCURRENT now use access key {outcome.current_access_key_id}.",
    ]
    if outcome.deactivated_access_key_id:
        when = (
            f"{outcome.deletion_after:%Y-%m-%d %H:%M} UTC"
            if outcome.deletion_after
            else "its rollback window has passed"
        )
        lines += [
            f"Access key {outcome.deactivated_access_key_id} was deactivated; it will be "
            f"deleted after {when}.",
        ]
        if outcome.deactivated_adopted_last_use:
            lines += [
                "It is the key Kion held before this product's first rotation, so other systems "
                "may send with it too.",
                f"IAM's last use of it: {outcome.deactivated_adopted_last_use}.",
            ]
        lines += [
            "",
            f"To go back to {outcome.deactivated_access_key_id} before then:",
            f"  ses-smtp-rotator rollback {installation}",
        ]
    subject = f"Kion SES SMTP credential {what}: {installation}"
    return subject[:100], "\n".join(lines) + "\n"


def _publish_notice(outcome: Outcome) -> None:
    topic_arn = os.environ.get(NOTICE_TOPIC_VARIABLE, "").strip()
    if not topic_arn:
        return
    subject, message = notice_text(outcome)
    try:
        client("sns").publish(TopicArn=topic_arn, Subject=subject, Message=message)
    except (ClientError, BotoCoreError) as error:
        _failed("notice", topic_arn, _reason(error))
        return
    logger.info("Published the notice", topic=topic_arn, outcome=outcome.outcome)


def _put_event(outcome: Outcome) -> str | None:
    """Put the outcome's event; the bus it went to, None when none is set or it failed."""
    bus = os.environ.get(EVENT_BUS_VARIABLE, "").strip()
    if not bus:
        return None
    entry = {
        "Source": EVENT_SOURCE,
        "DetailType": EVENT_DETAIL_TYPE,
        "Detail": json.dumps(outcome.detail()),
        "EventBusName": bus,
        "Resources": [outcome.secret_id] if outcome.secret_id.startswith("arn:") else [],
    }
    try:
        answer = client("events").put_events(Entries=[entry])
    except (ClientError, BotoCoreError) as error:
        _failed("event", bus, _reason(error))
        return None
    if answer.get("FailedEntryCount"):
        _failed("event", bus, str(answer.get("Entries", [{}])[0].get("ErrorCode", "an error")))
        return None
    return bus


def _reason(error: ClientError | BotoCoreError) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code") or "an error")
    return type(error).__name__


def _failed(what: str, target: str, reason: str) -> None:
    logger.warning(
        f"Could not publish the {what}; the rotation is not affected",
        target=target,
        error=reason,
    )
    metrics.add_metric("NoticeFailed", MetricUnit.Count, 1)
