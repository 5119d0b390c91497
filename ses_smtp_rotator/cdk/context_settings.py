"""The deployment settings, read from the CDK context (``cdk.json`` or ``cdk deploy -c key=value``).

Every setting is checked when the app synthesizes, as strictly as the function checks the secret,
and a wrong one stops synthesis with a message that names the cdk.json key as typed
(``installations[2].sesRegion``), its value and the fix. The checks of an installation and of the
schedule live with ``KionInstallation`` and ``RotationSchedule``; this module names their keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, NoReturn

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_logs as logs

from .installation import (
    KionInstallation,
    PropertyError,
    RotationSchedule,
    check_installations,
    did_you_mean,
    partition_of,
    shown,
    stack_regions,
)
from .rotation_checks import check_rotation_props
from .watch import DEFAULT_WATCH_SCHEDULE

DEFAULT_STACK_NAME = "SesSmtpRotator"
DEFAULT_REGION = "us-east-1"

# cdk.json key -> KionInstallation property.
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
    "sendPathCheck": "send_path_check",
    "sesAccount": "ses_account",
}
# What an installation needs at least.
PROD_EXAMPLE = {"name": "prod", "kionUrl": "https://kion.example.com", "sesRegion": "us-east-1"}
# cdk.json key -> RotationSchedule property.
SCHEDULE_KEYS = {
    "expression": "expression",
    "timeZone": "time_zone",
    "flexibleWindowMinutes": "flexible_window",
    "enabled": "enabled",
}
VPC_KEYS = (
    "vpcId",
    "subnetIds",
    "httpsEgressCidrs",
    "smtpEgressCidrs",
    "createSesSmtpEndpoint",
    "createSecretsManagerEndpoint",
    "createSqsEndpoint",
)
# cdk.json key -> SesSmtpRotation property.
ROTATION_KEYS = {
    "logLevel": "log_level",
    "functionTimeoutSeconds": "timeout",
    "sesAcceptTimeoutSeconds": "ses_accept_timeout",
    "watchSchedule": "watch_schedule",
    "alarmEmail": "alarm_email",
    "vpc.httpsEgressCidrs": "https_egress_cidrs",
    "vpc.smtpEgressCidrs": "smtp_egress_cidrs",
    "organizationId": "organization_id",
}
# Properties of the construct a check may name, besides an installation's or the schedule's own.
OTHER_PROPERTIES = {
    "create_ses_smtp_endpoint": "vpc.createSesSmtpEndpoint",
    "ses_account": "sesAccount",
}
SETTING_KEYS = (
    "stackName",
    "account",
    "region",
    "installations",
    "rotationSchedule",
    "alarmEmail",
    "alarmTopicArn",
    "notifyTopicArn",
    "vpc",
    "kmsKeyArn",
    "powertoolsLayerArn",
    "logLevel",
    "logRetentionDays",
    "sesAcceptTimeoutSeconds",
    "functionTimeoutSeconds",
    "removalPolicy",
    "watchSchedule",
    "previousKeyGraceDays",
    "organizationId",
)
DEPLOYMENT_KEY = "deployment"
DEPLOYMENTS_KEY = "deployments"
TOP_LEVEL_KEYS = (*SETTING_KEYS, DEPLOYMENT_KEY, DEPLOYMENTS_KEY)
# A context key shaped like one of ours (CDK's own keys and feature flags hold ':', '@' or '-').
SETTING_SHAPE = re.compile(r"^[a-z][A-Za-z0-9]*$")
STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")


class SettingsError(ValueError):
    """A setting in cdk.json (or -c on the command line) is missing or wrong."""


def construct_prop(*, keyword: str | None = None, **field_options: Any) -> Any:
    """A setting ``SesSmtpRotation`` takes as it is: the keyword of that name (or ``keyword``)."""
    return field(metadata={CONSTRUCT_KEYWORD: keyword}, **field_options)


CONSTRUCT_KEYWORD = "ses_smtp_rotation_keyword"


def construct_props(settings: AppSettings | VpcPlacement) -> dict[str, Any]:
    """The keyword arguments of ``SesSmtpRotation`` that ``settings`` gives as they are."""
    return {
        setting.metadata[CONSTRUCT_KEYWORD] or setting.name: getattr(settings, setting.name)
        for setting in fields(settings)
        if CONSTRUCT_KEYWORD in setting.metadata
    }


@dataclass(frozen=True)
class VpcPlacement:
    """Run the function in these subnets of an existing VPC."""

    vpc_id: str
    subnet_ids: tuple[str, ...]
    https_egress_cidrs: tuple[str, ...] = construct_prop(default=("0.0.0.0/0",))
    smtp_egress_cidrs: tuple[str, ...] = construct_prop(default=("0.0.0.0/0",))
    create_ses_smtp_endpoint: bool = construct_prop(default=False)
    create_secrets_manager_endpoint: bool = construct_prop(default=False)
    create_sqs_endpoint: bool = construct_prop(default=False)


@dataclass(frozen=True)
class AppSettings:
    """Everything the app deploys, from the CDK context. The fields made with ``construct_prop``
    go to ``SesSmtpRotation`` as they are (``construct_props``); the stack turns the others into
    its own settings and constructs (environment, VPC, topic, key)."""

    installations: tuple[KionInstallation, ...] = construct_prop()
    stack_name: str = DEFAULT_STACK_NAME
    account: str | None = None
    region: str = DEFAULT_REGION
    schedule: RotationSchedule = construct_prop(default_factory=RotationSchedule)
    alarm_email: str | None = construct_prop(default=None)
    alarm_topic_arn: str | None = None
    notify_topic_arn: str | None = None
    vpc: VpcPlacement | None = None
    kms_key_arn: str | None = None
    powertools_layer_arn: str | None = construct_prop(default=None)
    log_level: str = construct_prop(default="INFO")
    log_retention: logs.RetentionDays = construct_prop(default=logs.RetentionDays.ONE_YEAR)
    ses_accept_timeout: Duration = construct_prop(default_factory=lambda: Duration.seconds(120))
    function_timeout: Duration = construct_prop(
        keyword="timeout", default_factory=lambda: Duration.seconds(900)
    )
    removal_policy: RemovalPolicy = construct_prop(default=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE)
    watch_schedule: str = construct_prop(default=DEFAULT_WATCH_SCHEDULE)
    previous_key_grace: Duration = construct_prop(default_factory=lambda: Duration.days(7))
    organization_id: str | None = construct_prop(default=None)


def load_settings(context: Mapping[str, Any] | Callable[[str], Any]) -> AppSettings:
    """Read the settings from the CDK context: ``app.node.get_all_context()`` (which also lets
    a misspelled setting be named) or a getter such as ``app.node.try_get_context``."""
    if isinstance(context, Mapping):
        _no_unknown_keys(filter(SETTING_SHAPE.match, context), TOP_LEVEL_KEYS, None)
    top_level = context.get if isinstance(context, Mapping) else context
    get_context = _deployment_context(top_level)

    def setting(key: str, default: Any = None) -> Any:
        return _context_value(get_context, key, default)

    region = _region(setting("region", DEFAULT_REGION))
    account = _optional_account(setting("account"))
    vpc = _vpc(setting("vpc"))
    installations = _installations(setting("installations", []))
    try:
        check_installations(
            installations,
            region=region,
            ses_smtp_endpoint=bool(vpc and vpc.create_ses_smtp_endpoint),
            account=account,
        )
    except PropertyError as error:
        _property_refused(f"installations[{error.index}]", error, INSTALLATION_KEYS)
    settings = AppSettings(
        installations=installations,
        stack_name=_stack_name(setting("stackName", DEFAULT_STACK_NAME)),
        account=account,
        region=region,
        schedule=_schedule(setting("rotationSchedule", {})),
        alarm_email=_optional_email(setting("alarmEmail")),
        alarm_topic_arn=_optional_arn(setting("alarmTopicArn"), "alarmTopicArn", "sns", region),
        notify_topic_arn=_optional_arn(setting("notifyTopicArn"), "notifyTopicArn", "sns", region),
        vpc=vpc,
        kms_key_arn=_optional_arn(setting("kmsKeyArn"), "kmsKeyArn", "kms", region),
        powertools_layer_arn=_optional_arn(
            setting("powertoolsLayerArn"), "powertoolsLayerArn", "lambda", region
        ),
        log_level=_text(setting("logLevel", "INFO"), "logLevel"),
        log_retention=_retention(setting("logRetentionDays", 365)),
        ses_accept_timeout=Duration.seconds(
            _integer(setting("sesAcceptTimeoutSeconds", 120), "sesAcceptTimeoutSeconds", 1)
        ),
        function_timeout=Duration.seconds(
            _integer(
                setting("functionTimeoutSeconds", 900),
                "functionTimeoutSeconds",
                minimum=1,
                maximum=900,
            )
        ),
        removal_policy=_removal_policy(setting("removalPolicy", "retain")),
        watch_schedule=_text(setting("watchSchedule", DEFAULT_WATCH_SCHEDULE), "watchSchedule"),
        previous_key_grace=Duration.days(
            _integer(setting("previousKeyGraceDays", 7), "previousKeyGraceDays", 0, 365)
        ),
        organization_id=_optional_text(setting("organizationId"), "organizationId"),
    )
    try:
        check_rotation_props(
            log_level=settings.log_level,
            timeout_seconds=int(settings.function_timeout.to_seconds()),
            ses_accept_timeout_seconds=int(settings.ses_accept_timeout.to_seconds()),
            watch_schedule=settings.watch_schedule,
            alarm_email=settings.alarm_email,
            https_egress_cidrs=vpc.https_egress_cidrs if vpc else (),
            smtp_egress_cidrs=vpc.smtp_egress_cidrs if vpc else (),
            organization_id=settings.organization_id,
            cross_account=any(i.ses_account not in (None, account) for i in installations),
        )
    except PropertyError as error:
        _property_refused(None, error, ROTATION_KEYS)
    return settings


def _context_value(get_context: Callable[[str], Any], key: str, default: Any = None) -> Any:
    """One setting: JSON given as text (``-c key=<json>``) parsed, and ``null`` (JSON's, or the
    text ``-c key=null``) meaning the default."""
    value = get_context(key)
    if isinstance(value, str) and value.strip() == "null":
        value = None
    if isinstance(value, str) and value[:1] in "[{":
        try:
            value = json.loads(value)
        except ValueError as error:
            _refuse(key, value, f"is not valid JSON ({error})", "quote the JSON for your shell")
    return default if value is None else value


def _deployment_context(top_level: Callable[[str], Any]) -> Callable[[str], Any]:
    """The settings of the deployment ``-c deployment=NAME`` selects: the keys of its entry in
    ``deployments`` over the top-level ones. Without a selection, the top-level settings."""
    deployments = _context_value(top_level, DEPLOYMENTS_KEY, {})
    if not isinstance(deployments, Mapping) or not all(
        isinstance(entry, Mapping) for entry in deployments.values()
    ):
        _refuse(
            DEPLOYMENTS_KEY,
            deployments,
            "is not an object of named deployments",
            'write {"NAME": {<settings>}, ...}, each entry holding the settings that differ',
        )
    for name, entry in deployments.items():
        _no_unknown_keys(filter(SETTING_SHAPE.match, entry), SETTING_KEYS, f"deployments.{name}")
    name = _context_value(top_level, DEPLOYMENT_KEY)
    if name is None:
        return top_level
    if name not in deployments:
        known = ", ".join(sorted(deployments)) or "none"
        suggestion = did_you_mean(str(name), list(deployments)).replace("? Otherwise ", "?")
        _refuse(
            DEPLOYMENT_KEY,
            name,
            f"names no entry of deployments (known: {known})",
            suggestion or "add it to deployments in cdk.json, or drop -c deployment",
        )
    chosen = deployments[name]
    return lambda key: chosen[key] if key in chosen else top_level(key)


def _installations(raw: Any) -> tuple[KionInstallation, ...]:
    if not isinstance(raw, list) or not raw:
        _refuse(
            "installations",
            raw,
            "does not list a Kion installation",
            f"list at least one, e.g. [{json.dumps(PROD_EXAMPLE)}]",
        )
    installations = []
    for index, entry in enumerate(raw):
        where = f"installations[{index}]"
        if not isinstance(entry, Mapping):
            _refuse(where, entry, "is not an object", 'write {"name": ..., "kionUrl": ...}')
        _no_unknown_keys(entry, INSTALLATION_KEYS, where)
        for required in ("name", "kionUrl", "sesRegion"):
            if entry.get(required) in (None, ""):
                raise SettingsError(
                    f"Setting {where}.{required}: missing. Fix: add it, e.g. "
                    f"{json.dumps(required)}: {json.dumps(PROD_EXAMPLE[required])}."
                )
        properties: dict[str, Any] = {}
        for key, attribute in INSTALLATION_KEYS.items():
            value = entry.get(key)
            if value is None or value == "":
                continue
            if key == "smtpPort":
                value = _integer(value, f"{where}.smtpPort", minimum=1, maximum=65535)
            elif key == "sendPathCheck":
                value = _boolean(value, f"{where}.sendPathCheck")
            elif key == "kionCaBundle":
                _text(value, f"{where}.kionCaBundle")  # PEM as given, final line break included
            else:
                value = _text(value, f"{where}.{key}")
            properties[attribute] = value
        try:
            installations.append(KionInstallation(**properties))
        except PropertyError as error:
            _property_refused(where, error, INSTALLATION_KEYS)
    return tuple(installations)


def _schedule(raw: Any) -> RotationSchedule:
    if not isinstance(raw, Mapping):
        _refuse("rotationSchedule", raw, "is not an object", 'write {"expression": ...}')
    _no_unknown_keys(raw, SCHEDULE_KEYS, "rotationSchedule")
    defaults = RotationSchedule()
    window = _integer(
        raw.get("flexibleWindowMinutes", 15),
        "rotationSchedule.flexibleWindowMinutes",
        minimum=0,
        maximum=1440,
    )
    try:
        return RotationSchedule(
            expression=_text(
                raw.get("expression", defaults.expression), "rotationSchedule.expression"
            ),
            time_zone=_text(raw.get("timeZone", defaults.time_zone), "rotationSchedule.timeZone"),
            flexible_window=Duration.minutes(window) if window else None,
            enabled=_boolean(raw.get("enabled", True), "rotationSchedule.enabled"),
        )
    except PropertyError as error:
        _property_refused("rotationSchedule", error, SCHEDULE_KEYS)


def _vpc(raw: Any) -> VpcPlacement | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        _refuse("vpc", raw, "is not an object", "describe the VPC, or use null to run outside one")
    _no_unknown_keys(raw, VPC_KEYS, "vpc")
    vpc_id = _text(raw.get("vpcId"), "vpc.vpcId")
    if not re.match(r"^vpc-[0-9a-f]+$", vpc_id):
        _refuse("vpc.vpcId", vpc_id, "is not a VPC id", "use the id VPC shows, vpc-0123...")
    subnet_ids = _text_list(raw.get("subnetIds"), "vpc.subnetIds")
    for subnet_id in subnet_ids:
        if not re.match(r"^subnet-[0-9a-f]+$", subnet_id):
            _refuse("vpc.subnetIds", subnet_id, "is not a subnet id", "use ids like subnet-0abc...")
    return VpcPlacement(
        vpc_id=vpc_id,
        subnet_ids=subnet_ids,
        https_egress_cidrs=_cidrs(raw.get("httpsEgressCidrs", ["0.0.0.0/0"]), "httpsEgressCidrs"),
        smtp_egress_cidrs=_cidrs(raw.get("smtpEgressCidrs", ["0.0.0.0/0"]), "smtpEgressCidrs"),
        create_ses_smtp_endpoint=_boolean(
            raw.get("createSesSmtpEndpoint", False), "vpc.createSesSmtpEndpoint"
        ),
        create_secrets_manager_endpoint=_boolean(
            raw.get("createSecretsManagerEndpoint", False), "vpc.createSecretsManagerEndpoint"
        ),
        create_sqs_endpoint=_boolean(raw.get("createSqsEndpoint", False), "vpc.createSqsEndpoint"),
    )


def _refuse(key: str, value: Any, problem: str, fix: str) -> NoReturn:
    raise SettingsError(f"Setting {key}: {shown(value)} {problem}. Fix: {fix}.")


def _property_refused(where: str | None, error: PropertyError, keys: Mapping[str, str]) -> NoReturn:
    """A check of KionInstallation, RotationSchedule or SesSmtpRotation, told in cdk.json's
    words (``where`` is the object in cdk.json that holds the keys, None at the top)."""
    setting_of = {attribute: key for key, attribute in keys.items()} | OTHER_PROPERTIES
    key = setting_of.get(error.field, error.field)
    words = re.compile(r"\b(" + "|".join(map(re.escape, setting_of)) + r")\b")
    fix = words.sub(lambda match: setting_of[match.group(1)], error.fix)
    problem = words.sub(lambda match: setting_of[match.group(1)], error.problem)
    _refuse(f"{where}.{key}" if where else key, error.value, problem, fix.rstrip("."))


def _no_unknown_keys(keys: Iterable[str], known: Iterable[str], where: str | None) -> None:
    """Refuse the first of ``keys`` that is not ``known``, with the known key it resembles."""
    unknown = [key for key in keys if key not in known]
    if not unknown:
        return
    key = unknown[0]
    path = f"{where}.{key}" if where else key
    suggestion = did_you_mean(key, known).replace("? Otherwise ", "?")
    raise SettingsError(
        f"Setting {path}: not a setting{' here' if where else ''}. Fix: "
        f"{suggestion or 'remove it'} (known keys: {', '.join(known)})."
    )


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        _refuse(key, value, "is not a non-empty string", "put text in quotes")
    return value.strip()


def _text_list(value: Any, key: str, *, allow_empty: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or (not value and not allow_empty):
        _refuse(key, value, "is not a list of strings", 'write ["...", "..."]')
    return tuple(_text(item, key) for item in value)


def _boolean(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        _refuse(key, value, "is not true or false", "write true or false, without quotes")
    return value


def _cidrs(value: Any, key: str) -> tuple[str, ...]:
    return _text_list(value, f"vpc.{key}", allow_empty=True)


def _integer(value: Any, key: str, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _refuse(key, value, "is not a whole number", "write a number without quotes")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        _refuse(key, value, f"is outside {bounds}", f"use a number in {bounds}")
    return value


def _region(value: Any) -> str:
    region = _text(value, "region")
    if region not in stack_regions():
        _refuse(
            "region",
            region,
            "is not a region with Lambda, Secrets Manager and EventBridge Scheduler "
            "(botocore's endpoint data)",
            f"{did_you_mean(region, stack_regions())}use e.g. us-east-1, or us-gov-west-1 for "
            "GovCloud",
        )
    return region


def _stack_name(value: Any) -> str:
    name = _text(value, "stackName")
    if not STACK_NAME.match(name):
        _refuse(
            "stackName",
            name,
            "is not a CloudFormation stack name",
            "use up to 128 letters, digits and hyphens, starting with a letter",
        )
    return name


def _optional_account(value: Any) -> str | None:
    if value in (None, ""):
        return None
    account = str(value)
    if not re.match(r"^\d{12}$", account):
        _refuse(
            "account",
            value,
            "is not a 12-digit AWS account id",
            "write the id as a string, or null for the credentials' account",
        )
    return account


def _optional_text(value: Any, key: str) -> str | None:
    return None if value in (None, "") else _text(value, key)


def _optional_email(value: Any) -> str | None:
    if value in (None, ""):
        return None
    return _text(value, "alarmEmail")


def _optional_arn(value: Any, key: str, service: str, region: str) -> str | None:
    if value in (None, ""):
        return None
    arn = _text(value, key)
    match = re.match(rf"^arn:(aws[a-z-]*):{service}:([a-z0-9-]+):\d{{12}}:.+$", arn)
    if not match:
        _refuse(key, arn, f"is not the ARN of a {service} resource", "copy its complete ARN")
    if (match.group(1), match.group(2)) != (partition_of(region), region):
        _refuse(
            key,
            arn,
            f"is in {match.group(2)} ({match.group(1)}), the stack in {region}",
            f"name one in {region}, or leave the setting out",
        )
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
        _refuse(
            "logRetentionDays", days, "is not a CloudWatch Logs retention", f"use one of {allowed}"
        )
    return RETENTION_DAYS[days]


def _removal_policy(value: Any) -> RemovalPolicy:
    # retain keeps what a stack delete leaves, yet a rolled-back create removes it (a retry
    # would otherwise meet its fixed name "already exists").
    policies = {
        "retain": RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        "destroy": RemovalPolicy.DESTROY,
    }
    if value not in policies:
        _refuse("removalPolicy", value, "is not a removal policy", "use retain or destroy")
    return policies[value]
