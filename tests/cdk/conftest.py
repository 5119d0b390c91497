"""Fixtures: the variants of the CDK app the infrastructure tests read, synthesized once each."""

from __future__ import annotations

import pytest
from synthesized_app import FLEET, VPC, Synthesized, synthesize

# pytest-xdist builds a session fixture once per worker that needs it. The tests that read the
# same synthesized apps share a group (`--dist loadgroup`, pyproject.toml), so one worker
# synthesizes them, once, rather than every worker that happens to get one of those tests.
SHARED_APP_GROUPS = {
    "cdk-apps-by-size": {"apps_by_size", "app_of_100", "app_of_500"},
    "cdk-app-variants": {"default_app", "fleet_app", "vpc_app", "eu_app", "all_apps"},
    "cdk-app-of-500-accounts": {"app_of_500_accounts"},
}


def pytest_itemcollected(item: pytest.Item) -> None:
    used = set(getattr(item, "fixturenames", ()))
    group = next((name for name, apps in SHARED_APP_GROUPS.items() if used & apps), None)
    if group is not None:
        item.add_marker(pytest.mark.xdist_group(group))


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


def fleet_in_accounts(count: int) -> dict[str, object]:
    """``count`` installations, each in an SES account of its own (not the stack's), each with
    the user the access stack makes and the API key secret the stack creates."""
    fleet = fleet_of(count)
    for index, installation in enumerate(fleet["installations"]):  # type: ignore[arg-type]
        installation["sesAccount"] = f"{200000000000 + index}"
    return {**fleet, "account": "123456789012", "organizationId": "o-abcdefghij"}


@pytest.fixture(scope="session")
def app_of_500_accounts() -> Synthesized:
    """500 installations in 500 accounts: 500 access stacks (about a minute and a half with
    cdk-nag on two cores), synthesized once."""
    return synthesize(fleet_in_accounts(500))


@pytest.fixture(scope="session")
def apps_by_size(
    default_app: Synthesized, app_of_100: Synthesized, app_of_500: Synthesized
) -> dict[int, Synthesized]:
    return {1: default_app, 100: app_of_100, 500: app_of_500}
