"""``SesSmtpRotation``: rotates the Amazon SES SMTP credential of any number of Kion installations.

The construct puts what every installation shares in its own stack: the rotation function
(``function.py``), the function that writes installation settings during deploys, the scheduler
role and schedule group, the network (``network.py``) and the alerts (``alerting.py``). The
installations themselves (``installation_resources.py``) go into nested stacks
(``installation_stacks.py``). Policies reach the installations through the deployment's names,
tag and IAM path (``deployment.py``), so no policy grows with the installations.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from constructs import Construct

from . import acknowledgments
from .accounts import (
    ROTATION_ROLE,
    WATCH_ROLE,
    by_ses_account,
    grant_assume_access_roles,
    role_name,
    role_path,
    ses_account_environment,
)
from .alerting import RotationAlerts
from .dashboard import RotationDashboard, dashboard_name
from .deployment import Deployment
from .function import (
    DEFAULT_PREVIOUS_KEY_GRACE,
    DEFAULT_SES_ACCEPT_TIMEOUT,
    DEFAULT_TIMEOUT,
    LOG_LEVELS,
    RotationFunction,
    SettingsWriter,
    asset_code,
    powertools_layer,
    required_timeout,
)
from .installation import KionInstallation, PropertyError, RotationSchedule, check_installations
from .installation_resources import InstallationResources, SharedRotation, imported_user_arn
from .installation_stacks import InstallationStack, group_installations
from .kion_key_renewal import KionKeyRenewalFunction
from .network import FunctionNetwork
from .operator_access import OperatorPolicy, acknowledge_operator_policy
from .rotation_checks import OWNER, check_rotation_props
from .saved_queries import SavedQueries
from .watch import DEFAULT_WATCH_SCHEDULE, InstallationWatch, acknowledge_watch

__all__ = ["LOG_LEVELS", "InstallationResources", "SesSmtpRotation", "required_timeout"]


class SesSmtpRotation(Construct):
    """Rotates the SES SMTP credential of one or more Kion installations.

    Attributes: ``function`` (the rotation function) with its ``role`` and ``log_group``;
    ``installations`` (name -> InstallationResources: secret, API key secret, SMTP user, settings,
    rotation, schedule); ``installation_stacks`` (the nested stacks that hold them); ``secrets``
    (the installation secrets); ``topic`` (the alert topic); ``notify_topic`` (where the
    notices of successful rotations go: ``notify_topic``, or the alert topic);
    ``schedule_group`` and ``scheduler_role``; ``security_group`` (None outside a VPC);
    ``deployment`` (names, tag and IAM path of this deployment's resources); ``ses_accounts``
    (the installations whose ``ses_account`` is not the stack's, by account: each account needs
    a ``SesSmtpAccessStack``).
    ``grant_rotate(grantee)`` lets a person or role start a rotation on demand.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        installations: Sequence[KionInstallation],
        schedule: RotationSchedule | None = None,
        deployment_name: str | None = None,
        alarm_email: str | None = None,
        alarm_topic: sns.ITopic | None = None,
        notify_topic: sns.ITopic | None = None,
        encryption_key: kms.IKey | None = None,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        https_egress_cidrs: Sequence[str] = ("0.0.0.0/0",),
        smtp_egress_cidrs: Sequence[str] = ("0.0.0.0/0",),
        create_ses_smtp_endpoint: bool = False,
        create_secrets_manager_endpoint: bool = False,
        create_sqs_endpoint: bool = False,
        code: lambda_.Code | None = None,
        runtime: lambda_.Runtime = lambda_.Runtime.PYTHON_3_12,
        powertools_layer_arn: str | None = None,
        ses_accept_timeout: Duration = DEFAULT_SES_ACCEPT_TIMEOUT,
        timeout: Duration = DEFAULT_TIMEOUT,
        memory_size: int = 256,
        log_level: str = "INFO",
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        watch_schedule: str = DEFAULT_WATCH_SCHEDULE,
        previous_key_grace: Duration = DEFAULT_PREVIOUS_KEY_GRACE,
        organization_id: str | None = None,
    ) -> None:
        """Deploy the rotation of every installation in ``installations``.

        :param scope: the construct (usually a Stack) to put the rotation in.
        :param construct_id: its id; it becomes part of every logical id below it.
        :param installations: the Kion installations to rotate, at least one, names unique.
        :param schedule: when EventBridge Scheduler starts each installation's rotation.
            Default: ``RotationSchedule()``, 14:00 UTC on the first Tuesday of every month,
            within a 15-minute window.
        :param deployment_name: names this deployment's secrets, users, tag and IAM path, so two
            deployments in one account keep apart. Default: the stack's name.
        :param alarm_email: an address subscribed to the alert topic (it must confirm).
            Default: no subscription.
        :param alarm_topic: an existing SNS topic for the alerts. Default: the construct creates
            one.
        :param notify_topic: an SNS topic for the notice each successful rotation and rollback
            publishes (installation, key in use, key deactivated, its deletion date, the
            rollback command). Default: the alert topic.
        :param encryption_key: a customer managed KMS key for the installation secrets (the
            rotation function is granted its use). Default: Secrets Manager's AWS managed key.
        :param vpc: a VPC to run the rotation function in. Default: outside any VPC.
        :param vpc_subnets: the subnets of ``vpc`` for the function (and endpoints).
            Default: the VPC's private subnets.
        :param https_egress_cidrs: where the function may open HTTPS (Kion, AWS APIs), in a VPC.
            Default: ``("0.0.0.0/0",)``.
        :param smtp_egress_cidrs: where the function may open SMTP (SES), in a VPC.
            Default: ``("0.0.0.0/0",)``.
        :param create_ses_smtp_endpoint: create an SES SMTP interface endpoint in ``vpc`` (the
            only way to reach port 25). Default: False.
        :param create_secrets_manager_endpoint: create a Secrets Manager interface endpoint in
            ``vpc``. Default: False.
        :param create_sqs_endpoint: create an SQS interface endpoint in ``vpc``, for the watch's
            dispatch to its queue; without it the watch reaches SQS through the route the
            functions need to IAM (a NAT). Default: False.
        :param code: the functions' code. Default: the code inside this package
            (``ses_smtp_rotator/functions``), staged as an asset.
        :param runtime: the functions' Python runtime (3.11 or 3.12).
            Default: ``Runtime.PYTHON_3_12``.
        :param powertools_layer_arn: the Powertools for AWS Lambda layer to use.
            Default: AWS's public layer of ``POWERTOOLS_RELEASE`` in the stack's region.
        :param ses_accept_timeout: how long setSecret waits for SES to accept a new SMTP
            password. Default: 120 seconds.
        :param timeout: the rotation function's timeout, at most 15 minutes; it must cover the
            slowest step at its worst (``required_timeout``: the SES wait plus every Kion, SMTP
            and AWS call on the way, each at its timeouts and retries). Default: 15 minutes.
        :param memory_size: the rotation function's memory in MiB. Default: 256.
        :param log_level: the functions' log level: DEBUG, INFO, WARNING or ERROR.
            Default: ``"INFO"``.
        :param log_retention: how long the functions' logs are kept.
            Default: ``RetentionDays.ONE_YEAR``.
        :param removal_policy: what a stack delete does to the secrets, the users and the
            log groups (a create that rolls back removes them, so the deploy can be retried).
            Default: ``RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE``.
        :param watch_schedule: when the daily watch runs, a recurring expression in UTC.
            Default: ``"cron(0 6 * * ? *)"`` (06:00 every day).
        :param previous_key_grace: how long a replaced access key stays Inactive (the rollback
            window) before it is deleted, in whole days; 0 deletes a key this deployment made
            at once (an adopted key still waits for the watch). Default: 7 days.
        :param organization_id: the AWS Organization (``o-...``) of the SES accounts; needed
            when an installation's ``ses_account`` is not the stack's: the functions may assume
            the deployment's access role in the accounts of this organisation only.
            Default: None.
        """
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        _check_installations(
            installations,
            stack.region,
            None if Token.is_unresolved(stack.account) else stack.account,
            ses_smtp_endpoint=create_ses_smtp_endpoint,
        )
        self.ses_accounts: dict[str, list[KionInstallation]] = by_ses_account(
            installations, stack.account
        )
        check_rotation_props(
            log_level=log_level,
            timeout_seconds=int(timeout.to_seconds()),
            ses_accept_timeout_seconds=int(ses_accept_timeout.to_seconds()),
            watch_schedule=watch_schedule,
            alarm_email=alarm_email,
            https_egress_cidrs=https_egress_cidrs if vpc else (),
            smtp_egress_cidrs=smtp_egress_cidrs if vpc else (),
            memory_size=memory_size,
            organization_id=organization_id,
            cross_account=bool(self.ses_accounts),
        )
        endpoints = {
            "create_ses_smtp_endpoint": create_ses_smtp_endpoint,
            "create_secrets_manager_endpoint": create_secrets_manager_endpoint,
            "create_sqs_endpoint": create_sqs_endpoint,
        }
        asked = [name for name, wanted in endpoints.items() if wanted]
        if vpc is None and asked:
            raise PropertyError(
                OWNER,
                asked[0],
                True,
                "needs a VPC to put the endpoint in",
                "set vpc (and vpc_subnets), or leave the endpoints out",
            )
        self.deployment = Deployment(deployment_name or stack.stack_name)
        # Fixed role names only for a trust in another account: renaming replaces a role.
        named_roles = bool(self.ses_accounts)
        groups = group_installations(installations)

        network = None
        if vpc is not None:
            network = FunctionNetwork(
                self,
                "Network",
                vpc=vpc,
                vpc_subnets=vpc_subnets,
                installations=installations,
                https_egress_cidrs=https_egress_cidrs,
                smtp_egress_cidrs=smtp_egress_cidrs,
                create_ses_smtp_endpoint=create_ses_smtp_endpoint,
                create_secrets_manager_endpoint=create_secrets_manager_endpoint,
                create_sqs_endpoint=create_sqs_endpoint,
            )
        self.security_group: ec2.SecurityGroup | None = network.security_group if network else None

        layer = powertools_layer(self, runtime=runtime, layer_arn=powertools_layer_arn)
        rotation_function = RotationFunction(
            self,
            "RotationFunction",
            deployment=self.deployment,
            code=code or asset_code(),
            runtime=runtime,
            layer=layer,
            ses_accept_timeout=ses_accept_timeout,
            timeout=timeout,
            previous_key_grace=previous_key_grace,
            memory_size=memory_size,
            log_level=log_level,
            log_retention=log_retention,
            removal_policy=removal_policy,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_group=self.security_group,
            role_name=role_name(self.deployment, ROTATION_ROLE) if named_roles else None,
            role_path=role_path(self.deployment) if named_roles else None,
        )
        self.function = rotation_function.function
        self.role = rotation_function.role
        self.log_group = rotation_function.log_group
        rotation_function.grant_deployment_access(self.deployment)
        rotation_function.grant_imported(
            api_key_secret_arns=[
                i.kion_api_key_secret_arn for i in installations if i.kion_api_key_secret_arn
            ],
            user_arns=[
                arn for i in installations if (arn := imported_user_arn(stack, i)) is not None
            ],
        )
        network_policy = rotation_function.grant_network_interfaces() if vpc else None
        if encryption_key is not None:
            rotation_function.grant_key_use(encryption_key)
        # Secrets Manager may invoke the function for this deployment's installation secrets (one
        # permission for all: a function's resource policy is limited to 20 KB).
        self.invoke_permission = lambda_.CfnPermission(
            self,
            "SecretsManagerInvoke",
            action="lambda:InvokeFunction",
            function_name=self.function.function_arn,
            principal="secretsmanager.amazonaws.com",
            source_account=Aws.ACCOUNT_ID,
            source_arn=self.deployment.installation_secrets_arn(stack),
        )

        settings_writer = SettingsWriter(
            self,
            "SettingsWriter",
            deployment=self.deployment,
            # Always the packaged writer: ``code`` replaces the rotation function's code only.
            code=asset_code(),
            runtime=runtime,
            layer=layer,
            log_retention=log_retention,
            removal_policy=removal_policy,
            encryption_key=encryption_key,
        )

        # Named by CDK from its path and kept after a stack delete (CDK's default for a
        # group), but removed by a rolled-back create so that the next deploy can make it again.
        self.schedule_group = scheduler.ScheduleGroup(
            self, "Schedules", removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE
        )
        self.scheduler_role = self._scheduler_role()

        alerts = RotationAlerts(
            self,
            "Alerting",
            deployment_name=self.deployment.name,
            topic=alarm_topic,
            email=alarm_email,
            secret_id_prefixes=[
                self.deployment.secrets_arn_prefix(stack),
                self.deployment.secret_prefix,
            ],
            function=self.function,
            log_group=self.log_group,
            schedule_group=self.schedule_group,
        )
        self.topic = alerts.topic
        self.notify_topic: sns.ITopic = notify_topic or alerts.topic
        rotation_function.announce_to(self.notify_topic)

        imported_api_key_secret_arns = sorted(
            {i.kion_api_key_secret_arn for i in installations if i.kion_api_key_secret_arn}
        )
        imported_user_arns = sorted(
            {arn for i in installations if (arn := imported_user_arn(stack, i)) is not None}
        )
        key_renewal = KionKeyRenewalFunction(
            self,
            "KionKeyRenewal",
            deployment=self.deployment,
            # Like the settings writer, always the packaged code (``code`` is the rotation's).
            code=asset_code(),
            runtime=runtime,
            layer=layer,
            log_level=log_level,
            log_retention=log_retention,
            removal_policy=removal_policy,
            encryption_key=encryption_key,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_group=self.security_group,
            imported_api_key_secret_arns=imported_api_key_secret_arns,
        )
        self.key_renewal_function = key_renewal.function
        self.watch = InstallationWatch(
            self,
            "Watch",
            deployment=self.deployment,
            code=asset_code(),
            runtime=runtime,
            layer=layer,
            rotation_schedule=schedule or RotationSchedule(),
            rotation_timeout=timeout,
            renewal_function=key_renewal.function,
            topic=self.topic,
            schedule_group=self.schedule_group,
            watch_schedule=watch_schedule,
            previous_key_grace=previous_key_grace,
            imported_api_key_secret_arns=imported_api_key_secret_arns,
            imported_user_arns=imported_user_arns,
            log_level=log_level,
            log_retention=log_retention,
            removal_policy=removal_policy,
            encryption_key=encryption_key,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_group=self.security_group,
            role_name=role_name(self.deployment, WATCH_ROLE) if named_roles else None,
            role_path=role_path(self.deployment) if named_roles else None,
        )
        self._reach_ses_accounts(installations, organization_id)
        if network_policy is not None:
            # In a VPC, Lambda needs these before it creates the functions there.
            for role, function in (
                (key_renewal.role, key_renewal.function),
                (self.watch.role, self.watch.function),
            ):
                network_policy.attach_to_role(role)
                function.node.add_dependency(network_policy)
        # `ses-smtp-rotator status` finds the watch through the rotation function's settings.
        self.function.add_environment("WATCH_FUNCTION_NAME", self.watch.function.function_name)
        self.dashboard = RotationDashboard(
            self,
            "Dashboard",
            dashboard_name=dashboard_name(stack.stack_name, self.deployment),
            deployment=self.deployment,
            functions=[
                ("rotation", self.function),
                ("watch", self.watch.function),
                ("Kion API key renewal", key_renewal.function),
            ],
            alarms=[*alerts.alarms, *self.watch.alarms],
        ).dashboard
        SavedQueries(
            self,
            "SavedQueries",
            deployment_name=self.deployment.name,
            rotation_log_groups=[self.log_group, key_renewal.log_group],
            watch_log_group=self.watch.log_group,
        )
        operators = OperatorPolicy(
            self,
            "Operators",
            deployment=self.deployment,
            rotation_function=self.function,
            rotation_log_group=self.log_group,
            watch_function=self.watch.function,
            schedule_group=self.schedule_group,
            imported_api_key_secret_arns=imported_api_key_secret_arns,
            imported_user_arns=imported_user_arns,
            encryption_key=encryption_key,
        )
        self.operator_policy = operators.policy

        shared = SharedRotation(
            deployment=self.deployment,
            function=self.function,
            settings_writer=settings_writer.function,
            schedule_group=self.schedule_group,
            scheduler_role=self.scheduler_role,
            scheduler_statements=self._scheduler_statements(),
            schedule=schedule or RotationSchedule(),
            encryption_key=encryption_key,
            removal_policy=removal_policy,
            key_renewal_function=key_renewal.function,
        )
        self.installation_stacks: list[InstallationStack] = []
        self.installations: dict[str, InstallationResources] = {}
        for index, members in sorted(groups.items()):
            nested = InstallationStack(
                self, f"Installations{index:02d}", installations=members, shared=shared
            )
            # Attaching rotation makes Secrets Manager invoke the function, which then needs its
            # permissions; the settings writer needs its own before the first custom resource.
            nested.node.add_dependency(
                self.invoke_permission,
                rotation_function.role,
                settings_writer.role,
                key_renewal.invoke_permission,
                key_renewal.role,
            )
            self.installation_stacks.append(nested)
            self.installations.update(nested.installations)
        self.secrets: list[secretsmanager.ISecret] = [
            resources.secret for resources in self.installations.values()
        ]

        acknowledgments.acknowledge_function(self.role, self.function, network_policy)
        acknowledgments.acknowledge_runtime(settings_writer.function)
        acknowledgments.acknowledge_deployment_wildcards(
            self.deployment, self.role, api_key_secrets=True, users=True
        )
        acknowledgments.acknowledge_deployment_wildcards(self.deployment, settings_writer.role)
        acknowledgments.acknowledge_deployment_wildcards(self.deployment, self.scheduler_role)
        acknowledgments.acknowledge_installations(self.installations.values())
        acknowledgments.acknowledge_function(key_renewal.role, key_renewal.function, None)
        acknowledgments.acknowledge_deployment_wildcards(
            self.deployment, key_renewal.role, api_key_secrets=True
        )
        acknowledge_watch(self.deployment, self.watch)
        acknowledge_operator_policy(self.deployment, operators)

    def _reach_ses_accounts(
        self, installations: Sequence[KionInstallation], organization_id: str | None
    ) -> None:
        """The rotation and the watch learn the deployment's account and the access role's name
        where an installation names its SES account, and may assume that role where one is in
        another account."""
        if not any(i.ses_account is not None for i in installations):
            return
        for role, function in ((self.role, self.function), (self.watch.role, self.watch.function)):
            for name, value in ses_account_environment(self.deployment).items():
                function.add_environment(name, value)
            if self.ses_accounts:
                assert organization_id is not None  # check_rotation_props
                grant_assume_access_roles(role, self.deployment, organization_id)
                acknowledgments.acknowledge_access_roles(self.deployment, role)

    def grant_rotate(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` start a rotation of any installation secret of this deployment on
        demand (``RotateSecret`` needs ``lambda:InvokeFunction`` on the rotation function too)."""
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["secretsmanager:RotateSecret"],
            resource_arns=[self.deployment.installation_secrets_arn(Stack.of(self))],
            conditions=self.deployment.tag_condition(),
        )
        self.function.grant_invoke(grantee)
        return grant

    def _scheduler_statements(self) -> tuple[iam.PolicyStatement, ...]:
        """What the schedules may do: start a rotation of any installation secret of this
        deployment (``RotateSecret`` invokes the function as its caller)."""
        return (
            iam.PolicyStatement(
                actions=["secretsmanager:RotateSecret"],
                resources=[self.deployment.installation_secrets_arn(Stack.of(self))],
                conditions=self.deployment.tag_condition(),
            ),
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"], resources=[self.function.function_arn]
            ),
        )

    def _scheduler_role(self) -> iam.Role:
        role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={
                    "StringEquals": {
                        "aws:SourceAccount": Aws.ACCOUNT_ID,
                        "aws:SourceArn": self.schedule_group.schedule_group_arn,
                    }
                },
            ),
            description="Lets EventBridge Scheduler start rotations of the Kion SMTP secrets",
        )
        for statement in self._scheduler_statements():
            role.add_to_principal_policy(statement)
        return role


def _check_installations(
    installations: Sequence[KionInstallation],
    region: str,
    account: str | None,
    *,
    ses_smtp_endpoint: bool,
) -> None:
    """The checks across installations that ``load_settings`` makes for cdk.json, for a team
    that uses the construct directly. An environment-agnostic stack has no region to hold the
    installations to, so only the names and IAM users are compared there (and an SES account
    needs the stack's)."""
    if not installations:
        raise ValueError("Name at least one Kion installation to rotate.")
    if not Token.is_unresolved(region):
        check_installations(
            installations, region=region, ses_smtp_endpoint=ses_smtp_endpoint, account=account
        )
        return
    cross_account = next((i for i in installations if i.ses_account is not None), None)
    if cross_account is not None and account is None:
        raise ValueError(
            f"Installation {cross_account.name} names ses_account {cross_account.ses_account!r}, "
            "but the stack has no account: the access stack in the SES account trusts the "
            "function roles of the deployment's account, named by ARN. Fix: give the stack its "
            "account and region (env=Environment(account=..., region=...))."
        )
    names: set[str] = set()
    users: set[str] = set()
    for installation in installations:
        if installation.name.lower() in names:
            raise ValueError(
                f"Two installations are named {installation.name!r}; names must differ."
            )
        names.add(installation.name.lower())
        user = (installation.iam_user_name or "").lower()
        if user and user in users:
            raise ValueError(
                f"Installation {installation.name} names IAM user {installation.iam_user_name!r}, "
                "which another installation names too. Fix: give each installation its own "
                "SES SMTP user (or leave iam_user_name out to let the stack create one), so a "
                "rotation never deletes a key another installation sends with."
            )
        users.add(user)
