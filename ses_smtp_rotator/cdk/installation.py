"""What the construct is told about each Kion installation, and when rotations are scheduled.

Every property is checked when it is set, as strictly as the rotation function checks the secret
it becomes: a wrong one raises ``PropertyError``, which names the property, its value and the fix
(``ses_smtp_rotator.cdk.context_settings`` turns it into a message about the cdk.json key).
"""

from __future__ import annotations

import difflib
import re
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any, NoReturn
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import botocore.session
from aws_cdk import Duration

from ses_smtp_rotator.functions.regions import ses_regions
from ses_smtp_rotator.schedule import check_expression, next_run

DEFAULT_SMTP_PORT = 587
# difflib's similarity from which a typed value is taken for a typo of a known one.
CLOSE_ENOUGH = 0.6
INSTALLATION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$")
# What ses:FromAddress compares with (a * matches any characters).
FROM_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ACCOUNT_ID = re.compile(r"^\d{12}$")
IAM_USER_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST_NAME = re.compile(rf"^(?=.{{1,253}}$){HOST_LABEL}(?:\.{HOST_LABEL})*$")
# SES SMTP host names carry their region: public and FIPS endpoints, and interface VPC endpoints.
SES_SMTP_HOST = re.compile(
    r"^(?:vpce-[a-z0-9-]+\.)?email-smtp(?:-fips)?\.(?P<region>[a-z0-9-]+)"
    r"\.(?:vpce\.)?amazonaws\.com(?:\.cn)?$"
)
VPC_ENDPOINT_HOST = re.compile(r"^vpce-[a-z0-9-]+\.email-smtp\.[a-z0-9-]+\.vpce\.amazonaws\.com$")
SECRET_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):secretsmanager:(?P<region>[a-z0-9-]+):\d{12}:"
    r"secret:.+-[A-Za-z0-9]{6}$"
)
# Lambda functions cannot open connections to this port except through a VPC endpoint.
BLOCKED_SMTP_PORT = 25
# The services the stack's region must offer: the function, the secrets and the schedules.
STACK_SERVICES = ("lambda", "secretsmanager", "scheduler")


class PropertyError(ValueError):
    """A property of an installation or of the schedule cannot work.

    ``owner`` is what it belongs to ("Installation prod"), ``field`` the property's name, ``value``
    what it was given, ``problem`` what is wrong with it and ``fix`` what to put there instead.
    ``index`` is the installation's position when the problem involves several installations.
    """

    def __init__(
        self,
        owner: str,
        field: str,
        value: Any,
        problem: str,
        fix: str,
        *,
        index: int | None = None,
    ) -> None:
        self.owner = owner
        self.field = field
        self.value = value
        self.problem = problem
        self.fix = fix
        self.index = index
        super().__init__(f"{owner}: {field} {shown(value)} {problem}. Fix: {fix}")


def shown(value: Any) -> str:
    """The value as an error message shows it (long text, such as PEM, shortened)."""
    text = repr(value)
    return text if len(text) <= 72 else f"{text[:60]}...'"


@dataclass(frozen=True)
class KionInstallation:
    """One Kion installation whose SES SMTP credential is rotated.

    name: short identifier, letters, digits and hyphens (it names resources and outputs).
    kion_url: the https:// address Kion is opened at (no path, no query).
    ses_region: the region of the SES identity Kion sends from (the SMTP password depends on it).
    smtp_host: defaults to ``email-smtp.<ses_region>.amazonaws.com``.
    smtp_port: 587 (STARTTLS) by default; 25 and 2587 take STARTTLS, 465 and 2465 TLS. Lambda
        cannot reach port 25 except through a VPC endpoint.
    iam_user_name: an existing SES SMTP IAM user; when None the construct creates one with only
        ``ses:SendRawEmail``.
    iam_user_path: the path of the existing user (its ARN contains it).
    from_address: limits a created user to this sender (``ses:FromAddress``; ``*@example.com``
        works too).
    kion_api_key_secret_arn: the complete ARN of an existing secret that holds Kion's App API key;
        when None the construct creates an empty one for the operator to fill in.
    kion_ca_bundle: PEM text of a private CA that signed Kion's certificate.
    send_path_check: before Kion gets a new credential, send one message with it from Kion's
        sender to SES's mailbox simulator (counts against the send rate, billed as one message).
    ses_account: the 12-digit account that holds the SES identity and the IAM user, when it is
        not the stack's; its access stack (``<stackName>-Access-<account>``) lets the functions
        in. Default: the stack's account.
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
    send_path_check: bool = True
    ses_account: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not INSTALLATION_NAME.match(self.name):
            raise PropertyError(
                "Installation",
                "name",
                self.name,
                "is not a name of 1-32 letters, digits or hyphens",
                "start it with a letter or digit, e.g. prod or kion-eu",
            )
        self._check_kion_url()
        self._check_ses_region()
        self._check_smtp()
        self._check_iam_user()
        arn = self.kion_api_key_secret_arn
        if arn is not None and not SECRET_ARN.match(arn):
            self._refuse(
                "kion_api_key_secret_arn",
                "is not the complete ARN of a secret",
                "copy the secret's ARN from Secrets Manager, ending in the 6-character suffix "
                "it adds (…:secret:kion/api-key-AbCdEf), or leave it out to create an empty one",
            )
        if self.kion_ca_bundle is not None:
            self._check_ca_bundle()
        if not isinstance(self.send_path_check, bool):
            self._refuse(
                "send_path_check", "is not true or false", "use true (the default) or false"
            )
        if self.ses_account is not None and not (
            isinstance(self.ses_account, str) and ACCOUNT_ID.match(self.ses_account)
        ):
            self._refuse(
                "ses_account",
                "is not a 12-digit AWS account id",
                "write the id of the account that holds the SES identity and IAM user as a "
                'string of 12 digits, e.g. "111122223333" (leading zeros kept), or leave it out '
                "for the stack's account",
            )

    @property
    def resolved_smtp_host(self) -> str:
        return self.smtp_host or f"email-smtp.{self.ses_region}.amazonaws.com"

    @property
    def kion_port(self) -> int:
        return urlsplit(self.kion_url).port or 443

    @property
    def partition(self) -> str:
        """The AWS partition of ``ses_region`` (``aws``, ``aws-us-gov``, ...)."""
        return partition_of(self.ses_region)

    def _refuse(self, field_name: str, problem: str, fix: str) -> NoReturn:
        raise PropertyError(
            f"Installation {self.name}", field_name, getattr(self, field_name), problem, fix
        )

    def _check_kion_url(self) -> None:
        fix = "use the address Kion opens at, e.g. https://kion.example.com (no /api, no query)"
        try:
            parts = urlsplit(self.kion_url)
            port = parts.port
        except (TypeError, ValueError, AttributeError):
            self._refuse("kion_url", "is not an https:// address", fix)
        if parts.scheme != "https" or not parts.hostname:
            self._refuse("kion_url", "is not an https:// address with a host name", fix)
        if not HOST_NAME.match(parts.hostname) or parts.username is not None:
            self._refuse("kion_url", "does not name a host the function can reach", fix)
        if parts.path.rstrip("/"):
            self._refuse(
                "kion_url",
                f"has the path {parts.path!r}; the function adds /api/v3/... itself",
                fix,
            )
        if parts.query or parts.fragment:
            self._refuse("kion_url", "has a query or fragment", fix)
        if port == 0:
            self._refuse("kion_url", "names port 0", fix)

    def _check_ses_region(self) -> None:
        if self.ses_region not in ses_regions():
            self._refuse(
                "ses_region",
                "is not a region name with Amazon SES (botocore's endpoint data)",
                f"{did_you_mean(self.ses_region, ses_regions())}use the region of the SES "
                "identity Kion sends from, e.g. us-east-1 or us-gov-west-1",
            )

    def _check_smtp(self) -> None:
        if isinstance(self.smtp_port, bool) or not isinstance(self.smtp_port, int):
            self._refuse("smtp_port", "is not a port number", "use 587 (the default) or 465")
        if not 0 < self.smtp_port < 65536:
            self._refuse("smtp_port", "is not a port", "use 587 (the default), 2587, 465 or 2465")
        if self.smtp_host is None:
            return
        if not HOST_NAME.match(self.smtp_host):
            self._refuse(
                "smtp_host",
                "is not a host name",
                "give the SES SMTP host name alone (no scheme, no port), or leave it out",
            )
        ses_host = SES_SMTP_HOST.match(self.smtp_host)
        if ses_host and ses_host.group("region") != self.ses_region:
            self._refuse(
                "smtp_host",
                f"is an SES SMTP host of {ses_host.group('region')}, but ses_region is "
                f"{self.ses_region} (SMTP passwords work in one region only)",
                "use a host of the SES region Kion sends through, or correct ses_region",
            )

    def _check_iam_user(self) -> None:
        if self.iam_user_name is not None and not IAM_USER_NAME.match(self.iam_user_name):
            self._refuse(
                "iam_user_name",
                "is not an IAM user name",
                "give the user's name alone (1-64 letters, digits and +=,.@_-), not its ARN",
            )
        if not (
            isinstance(self.iam_user_path, str)
            and self.iam_user_path.startswith("/")
            and self.iam_user_path.endswith("/")
        ):
            self._refuse(
                "iam_user_path",
                "is not an IAM path",
                "it must start and end with '/', e.g. / or /mail/",
            )
        if self.from_address is not None and not FROM_ADDRESS.match(self.from_address):
            self._refuse(
                "from_address",
                "is not a sender address",
                "write the address Kion sends from, e.g. kion@example.com, or *@example.com "
                "for any sender of the domain",
            )
        if self.from_address is not None and self.iam_user_name is not None:
            self._refuse(
                "from_address",
                "limits the IAM user the stack creates; it cannot change the policy of the "
                f"existing user {self.iam_user_name!r}",
                "Remove one of them",
            )

    def _check_ca_bundle(self) -> None:
        fix = (
            "paste the CA certificate(s) as PEM text (-----BEGIN CERTIFICATE-----...) with "
            "their line breaks (\\n in JSON), or leave it out to trust the public CAs"
        )
        if not isinstance(self.kion_ca_bundle, str) or (
            "-----BEGIN CERTIFICATE-----" not in self.kion_ca_bundle
        ):
            self._refuse("kion_ca_bundle", "is not PEM text of a certificate", fix)
        try:
            # What the function does with it before it calls Kion.
            ssl.create_default_context().load_verify_locations(cadata=self.kion_ca_bundle)
        except (ssl.SSLError, ValueError) as error:
            self._refuse(
                "kion_ca_bundle",
                f"does not parse as PEM certificates ({error.__class__.__name__}: "
                f"{getattr(error, 'reason', None) or error})",
                fix,
            )


@dataclass(frozen=True)
class RotationSchedule:
    """When EventBridge Scheduler calls ``RotateSecret`` for every installation.

    expression: a recurring EventBridge Scheduler expression, ``cron(...)`` or ``rate(...)``; the
        default is 14:00 on the first Tuesday of every month, a working day when someone can act
        on an alert.
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
        fix = (
            "write rate(1 day) or rate(<n> days), with minute(s), hour(s) or day(s)"
            if str(self.expression).strip().startswith("rate(")
            else "write cron(minutes hours day-of-month month day-of-week year) with '?' in "
            "exactly one day field, e.g. cron(0 14 ? * TUE#1 *), or rate(30 days)"
        )
        if not isinstance(self.expression, str):
            self._refuse("expression", "is not an EventBridge Scheduler expression", fix)
        try:
            check_expression(self.expression)
        except ValueError as problem:
            self._refuse("expression", str(problem), fix)
        if self.expression.strip().startswith("at("):
            self._refuse("expression", "runs once; rotations must recur", fix)
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            self._refuse(
                "time_zone",
                "is not an IANA time zone name",
                "use e.g. UTC, Europe/Berlin or America/New_York",
            )
        now = datetime.now(UTC)
        if self.expression.strip().startswith("cron(") and not next_run(
            self.expression, self.time_zone, now
        ):
            self._refuse(
                "expression",
                "never fires again (no date from now on matches it)",
                "check the day, month and year fields",
            )
        window = self.flexible_window
        if window is not None and not 1 <= window.to_minutes() <= 1440:
            self._refuse(
                "flexible_window",
                "is not between 1 and 1440 minutes",
                "use None (0 in cdk.json) to fire on time, or up to one day",
            )
        if not isinstance(self.enabled, bool):
            self._refuse("enabled", "is not true or false", "use true (the default) or false")

    def _refuse(self, field_name: str, problem: str, fix: str) -> NoReturn:
        value = getattr(self, field_name)
        if isinstance(value, Duration):
            value = f"{value.to_minutes()} minutes"
        raise PropertyError("Rotation schedule", field_name, value, problem, fix)


def check_installations(
    installations: Sequence[KionInstallation],
    *,
    region: str,
    ses_smtp_endpoint: bool = False,
    account: str | None = None,
) -> None:
    """Checks that involve the installations together and the stack's region and account.

    ``ses_smtp_endpoint``: the function reaches SES SMTP in ``region`` through an interface VPC
    endpoint the stack creates. ``account``: the stack's account, None when synthesis does not
    know it. Raises PropertyError (with ``index`` set) on the first problem.
    """
    names: dict[str, str] = {}
    users: dict[str, str] = {}
    for index, installation in enumerate(installations):
        problem = _fleet_problem(installation, names, users, region, ses_smtp_endpoint) or (
            _account_problem(installation, account)
        )
        if problem:
            field_name, text, fix = problem
            raise PropertyError(
                f"Installation {installation.name}",
                field_name,
                getattr(installation, field_name),
                text,
                fix,
                index=index,
            )
        names[installation.name.lower()] = installation.name
        if installation.iam_user_name is not None:
            users[installation.iam_user_name.lower()] = installation.name


def _fleet_problem(
    installation: KionInstallation,
    names: dict[str, str],
    users: dict[str, str],
    region: str,
    ses_smtp_endpoint: bool,
) -> tuple[str, str, str] | None:
    """(property, problem, fix) of ``installation`` beside the earlier ones (``names`` and
    ``users``, lower-cased, to their installation), or None."""
    stack_partition = partition_of(region)
    if installation.name.lower() in names:
        return (
            "name",
            f"is already the name of installation {names[installation.name.lower()]} (names "
            "ignore case)",
            "give each installation its own name",
        )
    user = (installation.iam_user_name or "").lower()
    if user in users:
        return (
            "iam_user_name",
            f"is also the IAM user of installation {users[user]}; a rotation deletes keys "
            "another installation still sends with",
            "give each installation its own SES SMTP user, or leave iam_user_name out to have "
            "the stack create one",
        )
    if installation.partition != stack_partition and installation.ses_account is not None:
        return (
            "ses_account",
            f"holds an SES identity in {installation.ses_region}, partition "
            f"{installation.partition}, the stack's region {region} in {stack_partition}; a role "
            "cannot be assumed across partitions (an account of one partition is unknown to "
            "the other)",
            f"deploy a second stack in {installation.partition} for it, from an account of that "
            "partition (one stack per partition; see Other partitions in the docs' Deploying "
            "page)",
        )
    if installation.partition != stack_partition:
        return (
            "ses_region",
            f"is in partition {installation.partition}, the stack's region {region} in "
            f"{stack_partition}; a function cannot use secrets, users or SES of another partition",
            f"deploy a second stack in {installation.partition} for it (one stack per "
            "partition; see Other partitions in the docs' Deploying page)",
        )
    arn = SECRET_ARN.match(installation.kion_api_key_secret_arn or "")
    if arn and (arn.group("partition"), arn.group("region")) != (stack_partition, region):
        return (
            "kion_api_key_secret_arn",
            f"is a secret in {arn.group('region')}, the function runs in {region}",
            f"replicate the secret to {region} and name the replica, or leave it out to create one",
        )
    if installation.smtp_port == BLOCKED_SMTP_PORT and not _through_vpc_endpoint(
        installation, region, ses_smtp_endpoint
    ):
        return (
            "smtp_port",
            "is blocked for outbound connections from Lambda (except through a VPC endpoint), "
            "so the function cannot prove the credential there",
            "use 587 (or 2587, 465, 2465): the credential does not depend on the port and Kion "
            "may keep sending on 25. Or run the function in a VPC with create_ses_smtp_endpoint "
            "(or an SES endpoint's vpce-... host name as smtp_host)",
        )
    return None


def _account_problem(
    installation: KionInstallation, account: str | None
) -> tuple[str, str, str] | None:
    """(property, problem, fix) when ``installation`` names an SES account the stack cannot
    tell from its own."""
    if installation.ses_account is None or account is not None:
        return None
    return (
        "ses_account",
        "needs the stack's own account: the access stack in the SES account trusts the "
        "function roles of the deployment's account, named by ARN",
        "give the stack its 12-digit account (account in cdk.json, or the stack's env)",
    )


def _through_vpc_endpoint(
    installation: KionInstallation, region: str, ses_smtp_endpoint: bool
) -> bool:
    if installation.smtp_host and VPC_ENDPOINT_HOST.match(installation.smtp_host):
        return True
    return ses_smtp_endpoint and installation.ses_region == region


@lru_cache(maxsize=1)
def stack_regions() -> frozenset[str]:
    """Regions, in every partition, that offer Lambda, Secrets Manager and EventBridge Scheduler."""
    session = botocore.session.get_session()
    offered = [
        {
            region
            for partition in session.get_available_partitions()
            for region in session.get_available_regions(service, partition_name=partition)
        }
        for service in STACK_SERVICES
    ]
    return frozenset(set.intersection(*offered))


@cache
def partition_of(region: str) -> str:
    """The partition of a region name botocore knows (each botocore session reads its endpoint
    data anew: unremembered, a fleet of 500 installations took minutes to check)."""
    return botocore.session.get_session().get_partition_for_region(region)


def did_you_mean(value: Any, choices: Iterable[str]) -> str:
    """``"did you mean us-east-1? Otherwise "`` when ``value`` is close to one of ``choices``
    (difflib's similarity, case ignored; of equally close ones the first by name), else ``""``."""
    if not isinstance(value, str):
        return ""
    typed = value.lower()
    closeness = {
        choice: difflib.SequenceMatcher(None, typed, choice.lower()).ratio()
        for choice in sorted(choices)
    }
    closest = max(closeness, key=closeness.__getitem__, default=None)
    if closest is not None and closeness[closest] >= CLOSE_ENOUGH:
        return f"did you mean {closest}? Otherwise "
    return ""
