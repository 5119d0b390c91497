"""The deployment settings, read from the CDK context (``cdk.json`` or ``cdk deploy -c key=value``).

Every setting is checked when the app synthesizes, and a wrong one stops synthesis with a message
that names the setting and what to put there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_logs as logs

from .installation import KionInstallation, RotationSchedule
from .rotation import LOG_LEVELS, TIMEOUT_HEADROOM

DEFAULT_STACK_NAME = "SesSmtpRotator"
DEFAULT_REGION = "us-east-1"

INSTALLATION_KEYS = {
    "name": "name",
    "kionUrl": "kion_url",
    "sesRegion": "ses_region",
    "smtpHost": "smtp_host",
    "smtpPort": "smtp_port",
    "iamUserName": "iam_user_name",
    "iamUserPath": "iam_user_path",
    "fromAddress": "from_address",
    "kionApiKeySecretArn": "kion_api_key_secret_arn",
    "kionCaBundle": "kion_ca_bundle",
}
SCHEDULE_KEYS = ("expression", "timeZone", "flexibleWindowMinutes", "enabled")
VPC_KEYS = (
    "vpcId",
    "subnetIds",
    "httpsEgressCidrs",
    "smtpEgressCidrs",
    "createSesSmtpEndpoint",
    "createSecretsManagerEndpoint",
)


class SettingsError(ValueError):
    """A setting in cdk.json (or -c on the command line) is missing or wrong."""


@dataclass(frozen=True)
class VpcPlacement:
    """Run the function in these subnets of an existing VPC."""

    vpc_id: str
    subnet_ids: tuple[str, ...]
    https_egress_cidrs: tuple[str, ...] = ("0.0.0.0/0",)
    smtp_egress_cidrs: tuple[str, ...] = ("0.0.0.0/0",)
    create_ses_smtp_endpoint: bool = False
    create_secrets_manager_endpoint: bool = False


@dataclass(frozen=True)
class AppSettings:
    """Everything the app deploys, from the CDK context."""

    installations: tuple[KionInstallation, ...]
    stack_name: str = DEFAULT_STACK_NAME
    account: str | None = None
    region: str = DEFAULT_REGION
    schedule: RotationSchedule = field(default_factory=RotationSchedule)
    alarm_email: str | None = None
    alarm_topic_arn: str | None = None
    vpc: VpcPlacement | None = None
    kms_key_arn: str | None = None
    powertools_layer_arn: str | None = None
    log_level: str = "INFO"
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR
    ses_accept_timeout: Duration = field(default_factory=lambda: Duration.seconds(120))
    function_timeout: Duration = field(default_factory=lambda: Duration.seconds(300))
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN


def load_settings(get_context: Callable[[str], Any]) -> AppSettings:
    """Read the settings through ``get_context`` (``app.node.try_get_context``)."""

    def setting(key: str, default: Any = None) -> Any:
        value = get_context(key)
        if isinstance(value, str) and value[:1] in "[{":
            # `-c key=<json>` on the command line arrives as text.
            try:
                value = json.loads(value)
            except ValueError as error:
                raise SettingsError(f"Setting {key}: not valid JSON ({error}).") from None
        return default if value is None else value

    try:
        settings = AppSettings(
            installations=_installations(setting("installations", [])),
            stack_name=_text(setting("stackName", DEFAULT_STACK_NAME), "stackName"),
            account=_optional_account(setting("account")),
            region=_region(setting("region", DEFAULT_REGION), "region"),
            schedule=_schedule(setting("rotationSchedule", {})),
            alarm_email=_optional_email(setting("alarmEmail")),
            alarm_topic_arn=_optional_arn(setting("alarmTopicArn"), "alarmTopicArn", "sns"),
            vpc=_vpc(setting("vpc")),
            kms_key_arn=_optional_arn(setting("kmsKeyArn"), "kmsKeyArn", "kms"),
            powertools_layer_arn=_optional_arn(
                setting("powertoolsLayerArn"), "powertoolsLayerArn", "lambda"
            ),
            log_level=_choice(setting("logLevel", "INFO"), "logLevel", LOG_LEVELS),
            log_retention=_retention(setting("logRetentionDays", 365)),
            ses_accept_timeout=Duration.seconds(
                _integer(setting("sesAcceptTimeoutSeconds", 120), "sesAcceptTimeoutSeconds", 1)
            ),
            function_timeout=Duration.seconds(
                _integer(
                    setting("functionTimeoutSeconds", 300),
                    "functionTimeoutSeconds",
                    minimum=1,
                    maximum=900,
                )
            ),
            removal_policy=_removal_policy(setting("removalPolicy", "retain")),
        )
    except SettingsError:
        raise
    except ValueError as error:  # a check inside KionInstallation or RotationSchedule
        raise SettingsError(str(error)) from None
    wait = settings.ses_accept_timeout.to_seconds()
    if settings.function_timeout.to_seconds() < wait + TIMEOUT_HEADROOM.to_seconds():
        raise SettingsError(
            f"Setting functionTimeoutSeconds: {settings.function_timeout.to_seconds()} must "
            f"exceed the SES wait (sesAcceptTimeoutSeconds, {wait}) by at least "
            f"{TIMEOUT_HEADROOM.to_seconds()} seconds."
        )
    return settings


def _installations(raw: Any) -> tuple[KionInstallation, ...]:
    if not isinstance(raw, list) or not raw:
        raise SettingsError(
            "Setting installations: list at least one Kion installation, for example "
            '[{"name": "prod", "kionUrl": "https://kion.example.com", "sesRegion": "us-east-1"}].'
        )
    installations = []
    for index, entry in enumerate(raw):
        where = f"installations[{index}]"
        if not isinstance(entry, Mapping):
            raise SettingsError(f"Setting {where}: must be an object.")
        _no_unknown_keys(entry, INSTALLATION_KEYS, where)
        for required in ("name", "kionUrl", "sesRegion"):
            if not entry.get(required):
                raise SettingsError(f"Setting {where}.{required}: missing.")
        kwargs: dict[str, Any] = {}
        for key, attribute in INSTALLATION_KEYS.items():
            value = entry.get(key)
            if value is None or value == "":
                continue
            if key == "smtpPort":
                value = _integer(value, f"{where}.smtpPort", minimum=1, maximum=65535)
            elif key == "kionCaBundle":
                if not isinstance(value, str) or "-----BEGIN CERTIFICATE-----" not in value:
                    raise SettingsError(
                        f"Setting {where}.kionCaBundle: must be PEM text "
                        "(-----BEGIN CERTIFICATE-----...) of the CA that signed Kion's certificate."
                    )
            else:
                value = _text(value, f"{where}.{key}")
            kwargs[attribute] = value
        installations.append(KionInstallation(**kwargs))
    return tuple(installations)


def _schedule(raw: Any) -> RotationSchedule:
    if not isinstance(raw, Mapping):
        raise SettingsError("Setting rotationSchedule: must be an object.")
    _no_unknown_keys(raw, SCHEDULE_KEYS, "rotationSchedule")
    defaults = RotationSchedule()
    time_zone = _text(raw.get("timeZone", defaults.time_zone), "rotationSchedule.timeZone")
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"Setting rotationSchedule.timeZone: {time_zone!r} is not an IANA time zone name "
            "such as UTC or America/New_York."
        ) from None
    window = _integer(
        raw.get("flexibleWindowMinutes", 15),
        "rotationSchedule.flexibleWindowMinutes",
        minimum=0,
        maximum=1440,
    )
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise SettingsError("Setting rotationSchedule.enabled: must be true or false.")
    return RotationSchedule(
        expression=_text(raw.get("expression", defaults.expression), "rotationSchedule.expression"),
        time_zone=time_zone,
        flexible_window=Duration.minutes(window) if window else None,
        enabled=enabled,
    )


def _vpc(raw: Any) -> VpcPlacement | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise SettingsError("Setting vpc: must be an object (or null to run outside a VPC).")
    _no_unknown_keys(raw, VPC_KEYS, "vpc")
    vpc_id = _text(raw.get("vpcId"), "vpc.vpcId")
    if not re.match(r"^vpc-[0-9a-f]+$", vpc_id):
        raise SettingsError(f"Setting vpc.vpcId: {vpc_id!r} is not a VPC id (vpc-...).")
    subnet_ids = _text_list(raw.get("subnetIds"), "vpc.subnetIds")
    for subnet_id in subnet_ids:
        if not re.match(r"^subnet-[0-9a-f]+$", subnet_id):
            raise SettingsError(f"Setting vpc.subnetIds: {subnet_id!r} is not a subnet id.")
    flags = {}
    for key in ("createSesSmtpEndpoint", "createSecretsManagerEndpoint"):
        flags[key] = raw.get(key, False)
        if not isinstance(flags[key], bool):
            raise SettingsError(f"Setting vpc.{key}: must be true or false.")
    return VpcPlacement(
        vpc_id=vpc_id,
        subnet_ids=subnet_ids,
        https_egress_cidrs=_cidrs(raw.get("httpsEgressCidrs", ["0.0.0.0/0"]), "httpsEgressCidrs"),
        smtp_egress_cidrs=_cidrs(raw.get("smtpEgressCidrs", ["0.0.0.0/0"]), "smtpEgressCidrs"),
        create_ses_smtp_endpoint=flags["createSesSmtpEndpoint"],
        create_secrets_manager_endpoint=flags["createSecretsManagerEndpoint"],
    )


def _no_unknown_keys(entry: Mapping[str, Any], known: Any, where: str) -> None:
    unknown = sorted(set(entry) - set(known))
    if unknown:
        raise SettingsError(
            f"Setting {where}: unknown key(s) {', '.join(unknown)}; "
            f"known keys are {', '.join(known)}."
        )


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"Setting {key}: must be a non-empty string.")
    return value.strip()


def _text_list(value: Any, key: str, *, allow_empty: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or (not value and not allow_empty):
        raise SettingsError(f"Setting {key}: must be a list of strings.")
    return tuple(_text(item, key) for item in value)


def _cidrs(value: Any, key: str) -> tuple[str, ...]:
    cidrs = _text_list(value, f"vpc.{key}", allow_empty=True)
    for cidr in cidrs:
        if not re.match(r"^\d{1,3}(\.\d{1,3}){3}/\d{1,2}$", cidr):
            raise SettingsError(f"Setting vpc.{key}: {cidr!r} is not an IPv4 CIDR block.")
    return cidrs


def _integer(value: Any, key: str, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"Setting {key}: must be a whole number.")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise SettingsError(f"Setting {key}: {value} is outside {bounds}.")
    return value


def _choice(value: Any, key: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise SettingsError(f"Setting {key}: {value!r} must be one of {', '.join(choices)}.")
    return value


def _region(value: Any, key: str) -> str:
    region = _text(value, key)
    if not re.match(r"^[a-z]{2}(-[a-z]+)+-\d$", region):
        raise SettingsError(f"Setting {key}: {region!r} is not a region name such as us-east-1.")
    return region


def _optional_account(value: Any) -> str | None:
    if value in (None, ""):
        return None
    account = str(value)
    if not re.match(r"^\d{12}$", account):
        raise SettingsError(f"Setting account: {account!r} is not a 12-digit AWS account id.")
    return account


def _optional_email(value: Any) -> str | None:
    if value in (None, ""):
        return None
    email = _text(value, "alarmEmail")
    if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", email):
        raise SettingsError(f"Setting alarmEmail: {email!r} is not an e-mail address.")
    return email


def _optional_arn(value: Any, key: str, service: str) -> str | None:
    if value in (None, ""):
        return None
    arn = _text(value, key)
    if not re.match(rf"^arn:aws[a-z-]*:{service}:[a-z0-9-]+:\d{{12}}:.+$", arn):
        raise SettingsError(f"Setting {key}: {arn!r} is not the ARN of a {service} resource.")
    return arn


RETENTION_DAYS = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def _retention(value: Any) -> logs.RetentionDays:
    days = _integer(value, "logRetentionDays", minimum=1)
    if days not in RETENTION_DAYS:
        allowed = ", ".join(str(day) for day in RETENTION_DAYS)
        raise SettingsError(
            f"Setting logRetentionDays: {days} is not a CloudWatch Logs retention; use one of "
            f"{allowed}."
        )
    return RETENTION_DAYS[days]


def _removal_policy(value: Any) -> RemovalPolicy:
    policies = {"retain": RemovalPolicy.RETAIN, "destroy": RemovalPolicy.DESTROY}
    if value not in policies:
        raise SettingsError("Setting removalPolicy: must be 'retain' or 'destroy'.")
    return policies[value]
