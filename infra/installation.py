"""What the construct is told about each Kion installation, and when rotations are scheduled."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aws_cdk import Duration

DEFAULT_SMTP_PORT = 587
INSTALLATION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$")


@dataclass(frozen=True)
class KionInstallation:
    """One Kion installation whose SES SMTP credential is rotated.

    name: short identifier, letters, digits and hyphens (it names resources and outputs).
    kion_url: the https:// address Kion is opened at.
    ses_region: the region of the SES identity Kion sends from (the SMTP password depends on it).
    smtp_host: defaults to ``email-smtp.<ses_region>.amazonaws.com``.
    smtp_port: 587 (STARTTLS) by default; 25 and 2587 take STARTTLS, 465 and 2465 TLS.
    iam_user_name: an existing SES SMTP IAM user; when None the construct creates one with only
        ``ses:SendRawEmail``.
    iam_user_path: the path of the existing user (its ARN contains it).
    from_address: limits a created user to this sender (``ses:FromAddress``; ``*@example.com``
        works too).
    kion_api_key_secret_arn: the complete ARN of an existing secret that holds Kion's App API key;
        when None the construct creates an empty one for the operator to fill in.
    kion_ca_bundle: PEM text of a private CA that signed Kion's certificate.
    """

    name: str
    kion_url: str
    ses_region: str
    smtp_host: str | None = None
    smtp_port: int = DEFAULT_SMTP_PORT
    iam_user_name: str | None = None
    iam_user_path: str = "/"
    from_address: str | None = None
    kion_api_key_secret_arn: str | None = None
    kion_ca_bundle: str | None = None

    def __post_init__(self) -> None:
        if not INSTALLATION_NAME.match(self.name):
            raise ValueError(
                f"Installation name {self.name!r} must be 1-32 letters, digits or hyphens, "
                "starting with a letter or digit."
            )
        parts = urlsplit(self.kion_url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(
                f"Installation {self.name}: kion_url {self.kion_url!r} must be an https:// address "
                "such as https://kion.example.com."
            )
        if not re.match(r"^[a-z]{2}(-[a-z]+)+-\d$", self.ses_region):
            raise ValueError(
                f"Installation {self.name}: ses_region {self.ses_region!r} is not a region name "
                "such as us-east-1."
            )
        if not 0 < self.smtp_port < 65536:
            raise ValueError(f"Installation {self.name}: smtp_port {self.smtp_port} is not a port.")
        if not (self.iam_user_path.startswith("/") and self.iam_user_path.endswith("/")):
            raise ValueError(
                f"Installation {self.name}: iam_user_path {self.iam_user_path!r} must start and "
                "end with '/'."
            )
        if self.from_address is not None and self.iam_user_name is not None:
            raise ValueError(
                f"Installation {self.name}: from_address limits the IAM user the stack creates; "
                "it cannot change the policy of the existing user "
                f"{self.iam_user_name!r}. Remove one of them."
            )
        arn = self.kion_api_key_secret_arn
        if arn is not None and not re.match(
            r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$", arn
        ):
            raise ValueError(
                f"Installation {self.name}: kion_api_key_secret_arn must be the complete ARN of "
                "the secret, ending in the 6-character suffix Secrets Manager adds "
                f"(got {arn!r})."
            )

    @property
    def resolved_smtp_host(self) -> str:
        return self.smtp_host or f"email-smtp.{self.ses_region}.amazonaws.com"

    @property
    def kion_port(self) -> int:
        return urlsplit(self.kion_url).port or 443


@dataclass(frozen=True)
class RotationSchedule:
    """When EventBridge Scheduler calls ``RotateSecret`` for every installation.

    expression: an EventBridge Scheduler expression, ``cron(...)`` or ``rate(...)``; the default
        is 14:00 on the first Tuesday of every month, a working day when someone can act on an
        alert.
    time_zone: an IANA time zone name the cron expression is read in.
    flexible_window: lets Scheduler start each installation's rotation at any time within this
        window after the scheduled time (spreads installations apart); None fires exactly.
    enabled: False keeps the schedules but stops them firing (on-demand rotation still works).
    """

    expression: str = "cron(0 14 ? * TUE#1 *)"
    time_zone: str = "UTC"
    flexible_window: Duration | None = field(default_factory=lambda: Duration.minutes(15))
    enabled: bool = True

    def __post_init__(self) -> None:
        if not re.match(r"^(cron|rate)\(.+\)$", self.expression):
            raise ValueError(
                f"Rotation schedule {self.expression!r} must be an EventBridge Scheduler "
                "expression such as cron(0 14 ? * TUE#1 *) or rate(30 days)."
            )
