"""Fixtures: the variants of the CDK app the infrastructure tests read, synthesized once each."""

from __future__ import annotations

import pytest
from synthesized_app import FLEET, VPC, Synthesized, synthesize


@pytest.fixture(scope="session")
def default_app() -> Synthesized:
    """cdk.json as shipped: one installation, everything created by the stack."""
    return synthesize({})


@pytest.fixture(scope="session")
def fleet_app() -> Synthesized:
    """Two installations, one with an existing IAM user and API key secret; a KMS key, an
    existing alert topic, a custom schedule."""
    return synthesize(FLEET)


@pytest.fixture(scope="session")
def vpc_app() -> Synthesized:
    """The function in private subnets with the SES SMTP and Secrets Manager endpoints."""
    return synthesize(VPC)


@pytest.fixture(scope="session")
def eu_app() -> Synthesized:
    """cdk.json as shipped, deployed to eu-west-1."""
    return synthesize({"region": "eu-west-1"})


@pytest.fixture(scope="session")
def all_apps(
    default_app: Synthesized, fleet_app: Synthesized, vpc_app: Synthesized, eu_app: Synthesized
) -> dict[str, Synthesized]:
    return {"default": default_app, "fleet": fleet_app, "vpc": vpc_app, "eu-west-1": eu_app}


def fleet_of(count: int) -> dict[str, object]:
    """``count`` installations, each with the user and API key secret the stack creates."""
    return {
        "installations": [
            {
                "name": f"kion-{i:03d}",
                "kionUrl": f"https://kion{i}.example.com",
                "sesRegion": "us-east-1",
            }
            for i in range(count)
        ]
    }


@pytest.fixture(scope="session")
def app_of_100() -> Synthesized:
    return synthesize(fleet_of(100))


@pytest.fixture(scope="session")
def app_of_500() -> Synthesized:
    """The goal's size: synthesized once (about half a minute with cdk-nag on two cores)."""
    return synthesize(fleet_of(500))


@pytest.fixture(scope="session")
def apps_by_size(
    default_app: Synthesized, app_of_100: Synthesized, app_of_500: Synthesized
) -> dict[int, Synthesized]:
    return {1: default_app, 100: app_of_100, 500: app_of_500}
