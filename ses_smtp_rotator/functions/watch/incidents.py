"""One notification per incident: what the watch tells the alert topic about an installation.

An incident opens when an installation starts failing and closes when it is healthy again. The
watch tells the topic when it opens (or its failing checks change), repeats it at most once a day
while it stays open (marked as a repeat), and sends one recovery notice when it closes. A check
that could not be made neither opens nor closes an incident.

The open incidents live in SSM Parameter Store, one standard parameter per installation under
``/ses-smtp-rotator/<deployment>/incidents/`` (free, durable, and gone again once the incident
closes). The notice is published before the parameter is written: a failure in between sends one
notice twice, never none.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError

from ses_smtp_rotator.functions.services.aws_clients import aws_call, client, error_code
from ses_smtp_rotator.functions.watch.health import FAILING, HEALTHY, InstallationHealth

REPEAT_AFTER = timedelta(hours=23)
"""An open incident is told again after this long: once per daily run (whose checks finish
minutes apart from one day to the next), never twice in one run (an SQS message delivered
again)."""

NEW, CHANGED, REPEAT, RESOLVED = "new", "changed", "repeat", "resolved"

_CONSOLE_HOSTS = {
    "aws": "console.aws.amazon.com",
    "aws-us-gov": "console.amazonaws-us-gov.com",
    "aws-cn": "console.amazonaws.cn",
}
_PARAMETER_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-/]")


def incident_parameter_prefix(deployment: str) -> str:
    return f"/ses-smtp-rotator/{deployment}/incidents/"


@dataclass(frozen=True)
class Incident:
    """An open incident: the checks failing, when it opened and when it was last told."""

    checks: tuple[str, ...]
    opened: datetime
    notified: datetime

    def to_json(self) -> str:
        return json.dumps(
            {
                "checks": list(self.checks),
                "opened": self.opened.isoformat(),
                "notified": self.notified.isoformat(),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Incident | None:
        try:
            document = json.loads(text)
            return cls(
                tuple(document["checks"]),
                datetime.fromisoformat(document["opened"]),
                datetime.fromisoformat(document["notified"]),
            )
        except (ValueError, KeyError, TypeError):
            return None  # unreadable: treated as no incident, so the next notice is sent


@dataclass(frozen=True)
class Notice:
    """What to publish about one installation, and the incident to keep afterwards."""

    kind: str
    subject: str
    message: str
    incident: Incident | None
    """The incident still open after this notice; None once it is resolved."""


def decide(health: InstallationHealth, previous: Incident | None, now: datetime) -> Notice | None:
    """The notice ``health`` calls for, given the incident already open; None when nothing is
    to be told (an open incident told less than ``REPEAT_AFTER`` ago, or nothing checked)."""
    if health.verdict == FAILING:
        checks = tuple(health.failing)
        if previous is None or previous.checks != checks:
            kind = NEW if previous is None else CHANGED
            incident = Incident(checks, now, now)
        elif now - previous.notified >= REPEAT_AFTER:
            kind, incident = REPEAT, Incident(checks, previous.opened, now)
        else:
            return None
        message = failing_message(kind, health, incident)
        return Notice(kind, _subject(kind, health), message, incident)
    if health.verdict == HEALTHY and previous is not None:
        message = resolved_message(health, previous)
        return Notice(RESOLVED, _subject(RESOLVED, health), message, None)
    return None


def _subject(kind: str, health: InstallationHealth) -> str:
    words = {
        NEW: f"failing ({', '.join(health.failing)})",
        CHANGED: f"failing differently ({', '.join(health.failing)})",
        REPEAT: f"still failing ({', '.join(health.failing)})",
        RESOLVED: "healthy again",
    }[kind]
    # SNS subjects: at most 100 printable ASCII characters.
    return f"[{kind}] Kion installation {health.installation}: {words}"[:100]


def failing_message(kind: str, health: InstallationHealth, incident: Incident) -> str:
    lines = [f"[{kind}] {health.alert()}"]
    if kind == REPEAT:
        lines.append(
            f"This is a repeat: the incident opened at {incident.opened:%Y-%m-%d %H:%M} UTC and "
            "is told once a day until the installation is healthy again."
        )
    lines.extend(_where(health))
    return "\n".join(lines)


def resolved_message(health: InstallationHealth, incident: Incident) -> str:
    lines = [
        f"[resolved] Kion installation {health.installation} is healthy again: every check "
        f"passed at {health.checked_at:%Y-%m-%d %H:%M} UTC. The incident opened at "
        f"{incident.opened:%Y-%m-%d %H:%M} UTC ({', '.join(incident.checks)} failing)."
    ]
    lines.extend(_where(health))
    return "\n".join(lines)


def _where(health: InstallationHealth) -> list[str]:
    arn = _ArnParts.of(health.secret_id)
    lines = []
    if arn is not None:
        lines.append(f"Account {arn.account}, region {arn.region}, secret {arn.name}.")
    name = arn.name if arn is not None else health.secret_id
    lines.append(f"Run: ses-smtp-rotator status {name}")
    if arn is not None:
        lines.append(f"Console: {secret_console_url(health.secret_id)}")
    return lines


@dataclass(frozen=True)
class _ArnParts:
    partition: str
    region: str
    account: str
    name: str

    @classmethod
    def of(cls, secret_id: str) -> _ArnParts | None:
        parts = secret_id.split(":", 6)
        if len(parts) != 7 or parts[0] != "arn" or parts[5] != "secret":
            return None
        name = parts[6]
        if len(name) > 7 and name[-7] == "-":  # Secrets Manager's random suffix
            name = name[:-7]
        return cls(parts[1], parts[3], parts[4], name)


def secret_console_url(secret_arn: str) -> str:
    """The secret's page in the AWS console of its partition."""
    arn = _ArnParts.of(secret_arn)
    if arn is None:
        raise ValueError(f"{secret_arn!r} is not a secret ARN")
    host = _CONSOLE_HOSTS.get(arn.partition, _CONSOLE_HOSTS["aws"])
    return (
        f"https://{host}/secretsmanager/secret?name={quote(arn.name, safe='')}&region={arn.region}"
    )


class IncidentStore:
    """The open incidents of one deployment, in SSM Parameter Store."""

    def __init__(self, prefix: str, ssm: Any | None = None) -> None:
        self.prefix = prefix
        self._ssm = ssm

    def _client(self) -> Any:
        if self._ssm is None:
            self._ssm = client("ssm")
        return self._ssm

    def parameter_name(self, installation: str) -> str:
        return self.prefix + _PARAMETER_UNSAFE.sub("_", installation).strip("/")

    def open_incident(self, installation: str) -> Incident | None:
        name = self.parameter_name(installation)
        try:
            with aws_call("ssm:GetParameter", name):
                answer = self._client().get_parameter(Name=name)
        except ClientError as error:
            if error_code(error) == "ParameterNotFound":
                return None
            raise
        return Incident.from_json(answer["Parameter"]["Value"])

    def keep(self, installation: str, incident: Incident | None) -> None:
        """Store ``incident`` as the installation's open incident, or remove it (None)."""
        name = self.parameter_name(installation)
        if incident is not None:
            with aws_call("ssm:PutParameter", name):
                self._client().put_parameter(
                    Name=name,
                    Value=incident.to_json(),
                    Type="String",
                    Overwrite=True,
                    Description="An open incident of the SES SMTP rotation's daily watch",
                )
            return
        try:
            with aws_call("ssm:DeleteParameter", name):
                self._client().delete_parameter(Name=name)
        except ClientError as error:
            if error_code(error) != "ParameterNotFound":
                raise
