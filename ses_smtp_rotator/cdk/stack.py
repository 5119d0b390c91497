"""The ``SesSmtpRotator`` stack: one ``SesSmtpRotation`` configured from the app's settings.

The settings the construct takes as they are pass through ``construct_props``; what needs the
stack (the VPC and subnets, an existing topic or key by ARN) is made here. Beside it, in the same
app, one ``SesSmtpAccessStack`` (``<stackName>-Access-<account>``) for each SES account that
an installation names and that is not the stack's.
"""

from __future__ import annotations

from aws_cdk import Annotations, CfnOutput, Environment, Fn, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from .access import SesSmtpAccessStack
from .context_settings import AppSettings, VpcPlacement, construct_props
from .rotation import SesSmtpRotation


class SesSmtpRotatorStack(Stack):
    """Deploys the rotation for every Kion installation in the settings."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: AppSettings) -> None:
        super().__init__(
            scope,
            construct_id,
            stack_name=settings.stack_name,
            description="Rotates the Amazon SES SMTP credential of Kion installations",
            env=Environment(account=settings.account, region=settings.region),
        )
        vpc, vpc_subnets = self._network(settings.vpc)
        self.rotation = SesSmtpRotation(
            self,
            "Rotation",
            **construct_props(settings),
            **(construct_props(settings.vpc) if settings.vpc else {}),
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            alarm_topic=(
                sns.Topic.from_topic_arn(self, "AlarmTopic", settings.alarm_topic_arn)
                if settings.alarm_topic_arn
                else None
            ),
            notify_topic=(
                sns.Topic.from_topic_arn(self, "NotifyTopic", settings.notify_topic_arn)
                if settings.notify_topic_arn
                else None
            ),
            encryption_key=(
                kms.Key.from_key_arn(self, "EncryptionKey", settings.kms_key_arn)
                if settings.kms_key_arn
                else None
            ),
        )
        self._outputs()
        self.access_stacks = [
            SesSmtpAccessStack(
                scope,
                f"{settings.stack_name}-Access-{account}",
                stack_name=f"{settings.stack_name}-Access-{account}",
                rotation=self.rotation,
                ses_account=account,
            )
            for account in self.rotation.ses_accounts
        ]
        """The access stacks to deploy in the SES accounts (none when every installation's SES
        user is in the stack's account)."""

    def _network(
        self, placement: VpcPlacement | None
    ) -> tuple[ec2.IVpc | None, ec2.SubnetSelection | None]:
        if placement is None:
            return None, None
        vpc = ec2.Vpc.from_vpc_attributes(
            self,
            "Vpc",
            vpc_id=placement.vpc_id,
            # Not read: the function and the endpoints are placed by subnet id.
            availability_zones=Fn.get_azs(),
        )
        Annotations.of(vpc).acknowledge_warning(
            "@aws-cdk/aws-ec2:vpcAttributeIsListTokenavailabilityZones",
            "The function and the endpoints are placed in the subnets named by id; no construct "
            "selects subnets of this VPC by availability zone.",
        )
        subnets = []
        for index, subnet_id in enumerate(placement.subnet_ids):
            subnet = ec2.Subnet.from_subnet_id(self, f"Subnet{index}", subnet_id)
            Annotations.of(subnet).acknowledge_warning(
                "@aws-cdk/aws-ec2:noSubnetRouteTableId",
                "Only the subnet id is used (function and endpoint placement); nothing reads "
                "the subnet's route table.",
            )
            subnets.append(subnet)
        return vpc, ec2.SubnetSelection(subnets=subnets)

    def _outputs(self) -> None:
        rotation = self.rotation
        CfnOutput(
            self,
            "FunctionName",
            value=rotation.function.function_name,
            description="The rotation function (its log group holds every rotation's log)",
        )
        CfnOutput(
            self,
            "LogGroupName",
            value=rotation.log_group.log_group_name,
            description="Log group of the rotation function (structured JSON, one line per event)",
        )
        CfnOutput(
            self,
            "ScheduleGroupName",
            value=rotation.schedule_group.schedule_group_name,
            description="EventBridge Scheduler group: one rotation schedule per installation",
        )
        CfnOutput(
            self,
            "AlertTopicArn",
            value=rotation.topic.topic_arn,
            description="SNS topic for failed rotations and function errors",
        )
        CfnOutput(
            self,
            "WatchFunctionName",
            value=rotation.watch.function.function_name,
            description="The daily watch (status asks it about Kion's side of an installation)",
        )
        CfnOutput(
            self,
            "DashboardName",
            value=rotation.dashboard.dashboard_name,
            description="CloudWatch dashboard: every installation's health, rotations, Kion key",
        )
        CfnOutput(
            self,
            "OperatorPolicyArn",
            value=rotation.operator_policy.managed_policy_arn,
            description="Managed policy with what ses-smtp-rotator's commands need (no Kion key)",
        )
        CfnOutput(
            self,
            "InstallationSecretPrefix",
            value=rotation.deployment.secret_prefix,
            description=(
                "Installation secrets are named <prefix><installation>; each installation's "
                "ARNs and user are outputs of its nested stack"
            ),
        )
        CfnOutput(
            self,
            "KionApiKeySecretPrefix",
            value=rotation.deployment.api_key_secret_prefix,
            description="Kion API key secrets the stack creates are named <prefix><installation>",
        )
