"""What one Kion installation gets: its installation secret (settings written by a custom resource
that keeps the credential), its Kion API key secret and SES SMTP user (created or imported), the
rotation configuration on the secret and the schedule that starts its rotations."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import (
    Aws,
    CustomResource,
    Duration,
    RemovalPolicy,
    SecretValue,
    Stack,
    Tags,
    TimeZone,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from .accounts import created_user_name, is_cross_account
from .deployment import DEPLOYMENT_TAG, INSTALLATION_TAG, Deployment
from .installation import KionInstallation, RotationSchedule
from .kion_key_renewal import attach_renewal

SETTINGS_RESOURCE_TYPE = "Custom::InstallationSettings"


@dataclass(frozen=True)
class InstallationResources:
    """What the construct made (or imported) for one installation."""

    installation: KionInstallation
    secret: secretsmanager.ISecret
    api_key_secret: secretsmanager.ISecret
    smtp_user: iam.IUser
    settings: CustomResource
    rotation: secretsmanager.CfnRotationSchedule
    schedule: scheduler.Schedule

    @property
    def creates_user(self) -> bool:
        return isinstance(self.smtp_user, iam.User)

    @property
    def creates_api_key_secret(self) -> bool:
        return isinstance(self.api_key_secret, secretsmanager.Secret)


@dataclass(frozen=True)
class SharedRotation:
    """What every installation of a deployment shares."""

    deployment: Deployment
    function: lambda_.IFunction
    settings_writer: lambda_.IFunction
    schedule_group: scheduler.IScheduleGroup
    scheduler_role: iam.IRole
    scheduler_statements: tuple[iam.PolicyStatement, ...]
    schedule: RotationSchedule
    encryption_key: kms.IKey | None
    removal_policy: RemovalPolicy
    key_renewal_function: lambda_.IFunction | None = None
    """Attached to every Kion API key secret the stack creates (the watch starts renewals)."""


def imported_user_arn(stack: Stack, installation: KionInstallation) -> str | None:
    """The ARN of the existing SMTP user an installation names in the stack's account, None when
    the stack creates one or the user is in another account (reached through its access role)."""
    if not installation.iam_user_name or is_cross_account(installation, stack.account):
        return None
    return stack.format_arn(
        service="iam",
        region="",
        resource="user",
        resource_name=f"{installation.iam_user_path.lstrip('/')}{installation.iam_user_name}",
    )


def add_installation(
    scope: Construct, installation: KionInstallation, shared: SharedRotation
) -> InstallationResources:
    """Everything of ``installation`` under a new construct in ``scope``."""
    scope = Construct(scope, f"Installation-{installation.name}")
    deployment = shared.deployment
    Tags.of(scope).add(INSTALLATION_TAG, installation.name)
    Tags.of(scope).add(DEPLOYMENT_TAG, deployment.name)
    stack = Stack.of(scope)

    if installation.kion_api_key_secret_arn:
        api_key_secret = secretsmanager.Secret.from_secret_complete_arn(
            scope, "KionApiKey", installation.kion_api_key_secret_arn
        )
    else:
        api_key_secret = secretsmanager.Secret(
            scope,
            "KionApiKey",
            secret_name=deployment.api_key_secret_name(installation.name),
            description=(
                f"Kion App API key the SES SMTP rotation uses for {installation.name} "
                "(put the key in after the first deploy)"
            ),
            # Empty until the operator stores the key; CloudFormation never changes it again.
            secret_string_value=SecretValue.unsafe_plain_text('{"api_key": ""}'),
            encryption_key=shared.encryption_key,
            removal_policy=shared.removal_policy,
        )

    user_arn = imported_user_arn(stack, installation)
    if is_cross_account(installation, stack.account):
        # Made (or named) in the SES account by its access stack, under a name known here.
        user_name = installation.iam_user_name or created_user_name(deployment, installation)
        path = installation.iam_user_path if installation.iam_user_name else deployment.user_path
        smtp_user = iam.User.from_user_attributes(
            scope,
            "SmtpUser",
            user_arn=(f"arn:{Aws.PARTITION}:iam::{installation.ses_account}:user{path}{user_name}"),
        )
    elif user_arn is not None:
        smtp_user = iam.User.from_user_attributes(scope, "SmtpUser", user_arn=user_arn)
        user_name = installation.iam_user_name
    else:
        created_user = iam.User(scope, "SmtpUser", path=deployment.user_path)
        make_smtp_sender(created_user, installation)
        smtp_user = created_user
        user_name = created_user.user_name

    secret = secretsmanager.Secret(
        scope,
        "SmtpCredential",
        secret_name=deployment.secret_name(installation.name),
        description=(
            f"SES SMTP credential Kion uses for {installation.name}, with the settings its "
            "rotation needs (the credential is filled in by the first rotation)"
        ),
        # A constant first value: the settings are written by the custom resource below, so a
        # settings change never makes CloudFormation replace the value (and the credential).
        secret_string_value=SecretValue.unsafe_plain_text("{}"),
        encryption_key=shared.encryption_key,
        removal_policy=shared.removal_policy,
    )
    settings = CustomResource(
        scope,
        "Settings",
        service_token=shared.settings_writer.function_arn,
        resource_type=SETTINGS_RESOURCE_TYPE,
        properties={
            "SecretId": secret.secret_arn,
            # JSON text: CloudFormation passes custom resource properties as strings.
            "Settings": stack.to_json_string(
                installation_settings(installation, user_name, api_key_secret.secret_arn)
            ),
        },
    )

    # Rotation attached to the function, and nothing more: no RotationRules (the one schedule is
    # the Scheduler's below) and no rotation when the stack is deployed or updated. Attaching it
    # makes Secrets Manager test the configuration, which needs the settings in place.
    rotation = secretsmanager.CfnRotationSchedule(
        scope,
        "Rotation",
        secret_id=secret.secret_arn,
        rotation_lambda_arn=shared.function.function_arn,
        rotate_immediately_on_update=False,
    )
    rotation.node.add_dependency(settings)

    if shared.key_renewal_function is not None and installation.kion_api_key_secret_arn is None:
        attach_renewal(scope, api_key_secret, shared.key_renewal_function)

    rotation_schedule = _schedule(scope, installation, secret, shared)
    rotation_schedule.node.add_dependency(rotation)
    return InstallationResources(
        installation=installation,
        secret=secret,
        api_key_secret=api_key_secret,
        smtp_user=smtp_user,
        settings=settings,
        rotation=rotation,
        schedule=rotation_schedule,
    )


def installation_settings(
    installation: KionInstallation, user_name: str, api_key_secret_arn: str
) -> dict[str, object]:
    """The settings fields of the installation secret (never the credential)."""
    settings: dict[str, object] = {
        "ses_region": installation.ses_region,
        "iam_user_name": user_name,
        "kion_url": installation.kion_url,
        "kion_api_key_secret_id": api_key_secret_arn,
        "smtp_host": installation.resolved_smtp_host,
        "smtp_port": installation.smtp_port,
        "send_path_check": installation.send_path_check,
        "iam_user_dedicated": installation.iam_user_name is None,
    }
    if installation.kion_ca_bundle:
        settings["kion_ca_bundle"] = installation.kion_ca_bundle
    if installation.ses_account is not None:
        settings["ses_account"] = installation.ses_account
    return settings


def _schedule(
    scope: Construct,
    installation: KionInstallation,
    secret: secretsmanager.ISecret,
    shared: SharedRotation,
) -> scheduler.Schedule:
    target = scheduler_targets.Universal(
        service="secretsmanager",
        action="rotateSecret",
        input=scheduler.ScheduleTargetInput.from_object({"SecretId": secret.secret_arn}),
        role=shared.scheduler_role,
        # The same statements for every installation (they reach all of the deployment's
        # secrets), so the role's policy keeps its size.
        policy_statements=list(shared.scheduler_statements),
        # A retried RotateSecret could start a second rotation behind a slow first one; a missed
        # run is alerted instead (scheduler target errors) and run again on demand.
        retry_attempts=0,
        max_event_age=Duration.hours(1),
    )
    schedule = shared.schedule
    window = schedule.flexible_window
    return scheduler.Schedule(
        scope,
        "Schedule",
        description=f"Rotates the SES SMTP credential of Kion installation {installation.name}",
        schedule=scheduler.ScheduleExpression.expression(
            schedule.expression, TimeZone.of(schedule.time_zone)
        ),
        schedule_group=shared.schedule_group,
        target=target,
        time_window=(
            scheduler.TimeWindow.flexible(window)
            if window is not None and window.to_minutes() > 0
            else scheduler.TimeWindow.off()
        ),
        enabled=schedule.enabled,
    )


def make_smtp_sender(user: iam.User, installation: KionInstallation) -> None:
    """Give a user the stack makes its one permission, inline in the user resource (no policy
    resource per installation), and keep it always: Kion keeps sending with the user's key after
    the stack is gone, and CloudFormation cannot delete a user with keys it did not create."""
    cfn_user = user.node.default_child
    assert isinstance(cfn_user, iam.CfnUser)
    cfn_user.policies = [
        iam.CfnUser.PolicyProperty(
            policy_name="SendRawEmail",
            policy_document=iam.PolicyDocument(statements=[send_raw_email_statement(installation)]),
        )
    ]
    user.apply_removal_policy(RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE)


def send_raw_email_statement(installation: KionInstallation) -> iam.PolicyStatement:
    """The only permission an SES SMTP user needs, in its SES region and the account of the
    stack that makes the user."""
    ses_arn = f"arn:{Aws.PARTITION}:ses:{installation.ses_region}:{Aws.ACCOUNT_ID}"
    return iam.PolicyStatement(
        actions=["ses:SendRawEmail"],
        resources=[f"{ses_arn}:identity/*", f"{ses_arn}:configuration-set/*"],
        conditions=(
            {"StringLike": {"ses:FromAddress": installation.from_address}}
            if installation.from_address
            else None
        ),
    )
