"""The network the stack opens is the network the function dials: its security group's SMTP
egress and the SES SMTP endpoint's rules come from the function's own ``dialled_port``."""

from __future__ import annotations

from typing import Any

from synthesized_app import VPC, Synthesized, synthesize

from ses_smtp_rotator.functions.services.ses_smtp import dialled_port

VPC_SETTINGS: dict[str, Any] = VPC["vpc"]  # type: ignore[assignment]
US, EU = "us-east-1", "eu-west-1"
VPCE_HOST = "vpce-0abc1234def567890-abcdefgh.email-smtp.us-east-1.vpce.amazonaws.com"


def installation(name: str, region: str, port: int, host: str | None = None) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "name": name,
        "kionUrl": f"https://{name}.example.com",
        "sesRegion": region,
        "smtpPort": port,
    }
    if host:
        settings["smtpHost"] = host
    return settings


INSTALLATIONS = [
    installation("endpoint25", US, 25),
    installation("vpce25", US, 25, VPCE_HOST),
    installation("fips465", US, 465, "email-smtp-fips.us-east-1.amazonaws.com"),
    installation("remote2465", EU, 2465),
    installation("remote587", EU, 587),
    installation("local2587", US, 2587),
]


def smtp_ports(app: Synthesized) -> tuple[set[int], set[int]]:
    """(egress ports outside the endpoint, ports the function may use on the endpoint)."""
    group = app.template_json["Resources"][app.logical_id(app.stack.rotation.security_group)]
    https = {443}
    outside = {
        rule["FromPort"]
        for rule in group["Properties"]["SecurityGroupEgress"]
        if rule["FromPort"] not in https and "CidrIp" in rule
    }
    to_endpoint = {
        resource["Properties"]["FromPort"]
        for template in app.templates.values()
        for resource in template.get("Resources", {}).values()
        if resource["Type"] == "AWS::EC2::SecurityGroupEgress"
        and resource["Properties"]["FromPort"] not in https  # the Secrets Manager endpoint
    }
    return outside, to_endpoint


def test_the_template_opens_exactly_the_ports_the_function_dials() -> None:
    app = synthesize({"installations": INSTALLATIONS, "vpc": VPC_SETTINGS})
    outside, to_endpoint = smtp_ports(app)
    dialled = {
        (
            i["sesRegion"],
            dialled_port(
                i.get("smtpHost") or f"email-smtp.{i['sesRegion']}.amazonaws.com", i["smtpPort"]
            ),
        )
        for i in INSTALLATIONS
    }
    assert 25 not in outside | to_endpoint  # Lambda never dials 25 to SES
    assert to_endpoint == {port for region, port in dialled if region == US}
    assert outside - {443} == {port for region, port in dialled if region == EU}
