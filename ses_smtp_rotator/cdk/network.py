"""The functions' place in a VPC: their security group (HTTPS to Kion and the AWS APIs, SMTP to
SES) and, optionally, interface endpoints for SES SMTP, Secrets Manager and SQS."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from ses_smtp_rotator.functions.services.ses_smtp import dialled_port

from .installation import KionInstallation


class FunctionNetwork(Construct):
    """The security group of the rotation function (``security_group``) and the endpoints it uses.

    Egress follows the installations: HTTPS on 443 and every Kion port, SMTP on the port the
    function dials for each installation (``dialled_port``, the function's own decision),
    through the SES SMTP endpoint for installations whose SES region is the stack's.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        vpc_subnets: ec2.SubnetSelection | None,
        installations: Sequence[KionInstallation],
        https_egress_cidrs: Sequence[str],
        smtp_egress_cidrs: Sequence[str],
        create_ses_smtp_endpoint: bool,
        create_secrets_manager_endpoint: bool,
        create_sqs_endpoint: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self._vpc = vpc
        self._vpc_subnets = vpc_subnets
        self.security_group = ec2.SecurityGroup(
            self,
            "FunctionSecurityGroup",
            vpc=vpc,
            description="SES SMTP rotation function: HTTPS to Kion and AWS APIs, SMTP to SES",
            allow_all_outbound=False,
        )
        # HTTPS: Kion's API and the AWS APIs without a VPC endpoint here (IAM at least).
        https_ports = {443} | {installation.kion_port for installation in installations}
        for cidr in https_egress_cidrs:
            for port in sorted(https_ports):
                self.security_group.add_egress_rule(
                    ec2.Peer.ipv4(cidr), ec2.Port.tcp(port), f"HTTPS to Kion and AWS APIs ({port})"
                )

        region = Stack.of(self).region
        local_smtp_ports = sorted(
            {
                dialled_port(installation.resolved_smtp_host, installation.smtp_port)
                for installation in installations
                if installation.ses_region == region
            }
        )
        if create_ses_smtp_endpoint:
            self._add_ses_smtp_endpoint(region, local_smtp_ports)
        remote_smtp_ports = sorted(
            {
                dialled_port(installation.resolved_smtp_host, installation.smtp_port)
                for installation in installations
                if not (create_ses_smtp_endpoint and installation.ses_region == region)
            }
        )
        for cidr in smtp_egress_cidrs:
            for port in remote_smtp_ports:
                self.security_group.add_egress_rule(
                    ec2.Peer.ipv4(cidr), ec2.Port.tcp(port), f"SMTP to SES ({port})"
                )
        if create_secrets_manager_endpoint:
            self._add_api_endpoint(
                "SecretsManagerEndpoint",
                ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
                "Secrets Manager",
            )
        if create_sqs_endpoint:
            # The watch's scheduled run sends one message per installation to its queue from
            # inside the VPC (Lambda's poller reads the queue from outside).
            self._add_api_endpoint("SqsEndpoint", ec2.InterfaceVpcEndpointAwsService.SQS, "SQS")

    def _add_api_endpoint(
        self, construct_id: str, service: ec2.InterfaceVpcEndpointAwsService, name: str
    ) -> None:
        """An AWS API's endpoint, open on 443 to the functions' security group. (The words are
        those the Secrets Manager endpoint had when only the rotation function used it: a new
        description would replace its security group.)"""
        endpoint = self._interface_endpoint(
            construct_id, service, f"{name} interface endpoint for the rotation function"
        )
        self._allow(
            endpoint, 443, "HTTPS from the rotation function", f"HTTPS to the {name} endpoint"
        )

    def _add_ses_smtp_endpoint(self, region: str, ports: list[int]) -> None:
        if not ports:
            raise ValueError(
                f"create_ses_smtp_endpoint adds an SES SMTP endpoint in {region}, but no "
                "installation sends through SES in that region."
            )
        endpoint = self._interface_endpoint(
            "SesSmtpEndpoint",
            ec2.InterfaceVpcEndpointService(f"com.amazonaws.{region}.email-smtp", ports[0]),
            "SES SMTP interface endpoint for the rotation function",
        )
        for port in ports:
            self._allow(
                endpoint,
                port,
                f"SMTP from the rotation function ({port})",
                f"SMTP to the SES endpoint ({port})",
            )

    def _allow(
        self, endpoint: ec2.InterfaceVpcEndpoint, port: int, inbound: str, outbound: str
    ) -> None:
        endpoint.connections.allow_from(self.security_group, ec2.Port.tcp(port), inbound)
        self.security_group.connections.allow_to(endpoint, ec2.Port.tcp(port), outbound)

    def _interface_endpoint(
        self, construct_id: str, service: ec2.IInterfaceVpcEndpointService, description: str
    ) -> ec2.InterfaceVpcEndpoint:
        endpoint_security_group = ec2.SecurityGroup(
            self,
            f"{construct_id}SecurityGroup",
            vpc=self._vpc,
            description=description,
            allow_all_outbound=False,
        )
        return ec2.InterfaceVpcEndpoint(
            self,
            construct_id,
            vpc=self._vpc,
            service=service,
            subnets=self._vpc_subnets,
            private_dns_enabled=True,
            open=False,
            security_groups=[endpoint_security_group],
        )
