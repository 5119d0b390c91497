"""The VPC variant: subnets, security groups, SES SMTP and Secrets Manager endpoints."""

from __future__ import annotations

from typing import Any

from synthesized_app import Synthesized, only


def group_id_of(app: Synthesized, construct: Any) -> dict[str, Any]:
    return {"Fn::GetAtt": [app.logical_id(construct), "GroupId"]}


def test_function_runs_in_the_given_subnets_with_its_own_security_group(
    vpc_app: Synthesized,
) -> None:
    rotation = vpc_app.stack.rotation
    function = vpc_app.template_json["Resources"][
        vpc_app.logical_id(vpc_app.stack.rotation.function)
    ]["Properties"]
    assert function["VpcConfig"] == {
        "SubnetIds": ["subnet-0aaa1111", "subnet-0bbb2222"],
        "SecurityGroupIds": [group_id_of(vpc_app, rotation.security_group)],
    }


def test_function_security_group_allows_egress_to_kion_ses_and_aws_apis_only(
    vpc_app: Synthesized,
) -> None:
    rotation = vpc_app.stack.rotation
    group = vpc_app.template_json["Resources"][vpc_app.logical_id(rotation.security_group)]
    egress = {
        (rule["IpProtocol"], rule["FromPort"], rule["ToPort"], rule["CidrIp"])
        for rule in group["Properties"]["SecurityGroupEgress"]
    }
    assert egress == {
        ("tcp", 443, 443, "0.0.0.0/0"),  # Kion (prod) and AWS APIs such as IAM
        ("tcp", 8443, 8443, "0.0.0.0/0"),  # Kion (eu) on its own port
        ("tcp", 2587, 2587, "0.0.0.0/0"),  # SES SMTP in eu-west-1, outside this region
    }
    assert "SecurityGroupIngress" not in group["Properties"]


def endpoint(app: Synthesized, service: str) -> dict[str, Any]:
    return only(
        [
            e["Properties"]
            for e in app.resources("AWS::EC2::VPCEndpoint").values()
            if e["Properties"]["ServiceName"] == service
        ],
        f"{service} endpoint",
    )


def test_ses_smtp_endpoint_is_added_with_the_smtp_port_open_to_the_function(
    vpc_app: Synthesized,
) -> None:
    rotation = vpc_app.stack.rotation
    ses = endpoint(vpc_app, "com.amazonaws.us-east-1.email-smtp")
    assert ses["VpcEndpointType"] == "Interface"
    assert ses["PrivateDnsEnabled"] is True
    assert ses["SubnetIds"] == ["subnet-0aaa1111", "subnet-0bbb2222"]
    endpoint_group = only(ses["SecurityGroupIds"], "endpoint security group")
    vpc_app.template.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {
            "GroupId": endpoint_group,
            "SourceSecurityGroupId": group_id_of(vpc_app, rotation.security_group),
            "IpProtocol": "tcp",
            "FromPort": 587,
            "ToPort": 587,
        },
    )
    vpc_app.template.has_resource_properties(
        "AWS::EC2::SecurityGroupEgress",
        {
            "GroupId": group_id_of(vpc_app, rotation.security_group),
            "DestinationSecurityGroupId": endpoint_group,
            "FromPort": 587,
            "ToPort": 587,
        },
    )


def test_secrets_manager_endpoint_is_added_for_https_from_the_function(
    vpc_app: Synthesized,
) -> None:
    rotation = vpc_app.stack.rotation
    secrets_manager = endpoint(vpc_app, "com.amazonaws.us-east-1.secretsmanager")
    assert secrets_manager["PrivateDnsEnabled"] is True
    endpoint_group = only(secrets_manager["SecurityGroupIds"], "endpoint security group")
    vpc_app.template.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {
            "GroupId": endpoint_group,
            "SourceSecurityGroupId": group_id_of(vpc_app, rotation.security_group),
            "FromPort": 443,
            "ToPort": 443,
        },
    )


def test_endpoints_accept_nothing_but_the_function(vpc_app: Synthesized) -> None:
    function_group = group_id_of(vpc_app, vpc_app.stack.rotation.security_group)
    for ingress in vpc_app.resources("AWS::EC2::SecurityGroupIngress").values():
        assert ingress["Properties"]["SourceSecurityGroupId"] == function_group
    for group in vpc_app.resources("AWS::EC2::SecurityGroup").values():
        assert "SecurityGroupIngress" not in group["Properties"]


def test_function_may_manage_its_network_interfaces_before_it_is_created(
    vpc_app: Synthesized,
) -> None:
    rotation = vpc_app.stack.rotation
    role_id = vpc_app.logical_id(rotation.role)
    policies = {
        logical_id: policy
        for logical_id, policy in vpc_app.resources("AWS::IAM::Policy").items()
        if any(
            "ec2:CreateNetworkInterface" in s["Action"]
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
        )
    }
    policy_id, policy = only(list(policies.items()), "network interface policy")
    # The rotation function's role, and those of the watch and the Kion API key renewal, which
    # run in the same subnets.
    assert {"Ref": role_id} in policy["Properties"]["Roles"]
    assert len(policy["Properties"]["Roles"]) == 3
    for function in (rotation.function, rotation.watch.function, rotation.key_renewal_function):
        resource = vpc_app.template_json["Resources"][vpc_app.logical_id(function)]
        assert policy_id in resource["DependsOn"]


def test_no_vpc_resources_without_vpc_settings(default_app: Synthesized) -> None:
    for resource_type in ("AWS::EC2::SecurityGroup", "AWS::EC2::VPCEndpoint"):
        default_app.template.resource_count_is(resource_type, 0)
    function = default_app.template_json["Resources"][
        default_app.logical_id(default_app.stack.rotation.function)
    ]["Properties"]
    assert "VpcConfig" not in function


def test_an_sqs_endpoint_lets_the_watch_reach_its_queue_from_the_vpc(
    vpc_app: Synthesized,
) -> None:
    rotation = vpc_app.stack.rotation
    sqs = endpoint(vpc_app, "com.amazonaws.us-east-1.sqs")
    assert sqs["PrivateDnsEnabled"] is True  # the queue URL's own host name resolves to it
    endpoint_group = only(sqs["SecurityGroupIds"], "endpoint security group")
    # The watch runs with the functions' security group: HTTPS from it, nothing else.
    assert vpc_app.stack.resolve(
        rotation.watch.function.connections.security_groups[0].security_group_id
    ) == group_id_of(vpc_app, rotation.security_group)
    vpc_app.template.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {
            "GroupId": endpoint_group,
            "SourceSecurityGroupId": group_id_of(vpc_app, rotation.security_group),
            "FromPort": 443,
            "ToPort": 443,
        },
    )
