"""Two deployments of one stack, with the same installation (so the same secret names), in two AWS
accounts, renew their Kion API keys against one Kion: neither deletes a key of the other.

This is a DR pair, a migration, or a test stack pointed at the production Kion. Each deployment's
renewal runs the real function in its own account (moto keeps accounts apart); at the moment Kion
deletes a key, the key must not be one the other deployment made or holds. The count feeds the
safety figure "Kion keys of another deployment deleted".
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from kion_key_world import KeyRenewalWorld
from moto.core import DEFAULT_ACCOUNT_ID
from rotation_world import RotationWorld
from safety_figures import KION_KEY_OTHER_DEPLOYMENT_DELETED

from ses_smtp_rotator.functions.kion_key_renewal.handler import lambda_handler as renewal_handler
from ses_smtp_rotator.functions.kion_key_renewal.key_names import (
    KEY_NAME_PREFIX,
    VERSION_IN_NAME,
    named_by_deployment,
)
from ses_smtp_rotator.local.kion_app_api_keys import KionExchange
from ses_smtp_rotator.local.kion_server import KionStandIn
from ses_smtp_rotator.local.rotation_service import LocalRotationService, in_process_function

SECOND_ACCOUNT = "222222222222"
INSTALLATION = "kion"  # the same name in both deployments


@dataclass
class Deployment:
    """One deployment's installation, and the Kion keys it made or held."""

    account: str
    world: KeyRenewalWorld
    arn: str = ""
    name: str = ""
    owned: set[int] = field(default_factory=set)


@dataclass
class TwoDeployments:
    """Both deployments against one Kion, each acting in its own account."""

    kion: KionStandIn
    monkeypatch: pytest.MonkeyPatch
    deployments: list[Deployment] = field(default_factory=list)
    acting: Deployment | None = None
    deleted_of_other: list[str] = field(default_factory=list)

    @contextmanager
    def in_account(self, deployment: Deployment) -> Iterator[Deployment]:
        """Calls to AWS (the function's and the test's) go to ``deployment``'s account."""
        self.monkeypatch.setenv("MOTO_ACCOUNT_ID", deployment.account)
        self.acting = deployment
        try:
            yield deployment
        finally:
            self.acting = None
            self.monkeypatch.delenv("MOTO_ACCOUNT_ID")

    def renew(self, deployment: Deployment) -> None:
        with self.in_account(deployment):
            deployment.world.renew()
            self.note_owned(deployment)

    def note_owned(self, deployment: Deployment) -> None:
        """The keys ``deployment`` holds or whose names its renewals give."""
        deployment.owned |= deployment.world.held_key_ids()
        deployment.owned |= {
            record.id
            for record in list(self.kion.api_keys.records.values())
            if named_by_deployment(deployment.arn, deployment.name, record.name)
        }

    def observe(self, exchange: KionExchange) -> None:
        """At the moment Kion deletes a key: is it another deployment's?"""
        if exchange.method != "DELETE" or exchange.status != 200 or self.acting is None:
            return
        key_id = int(exchange.target.rsplit("/", 1)[-1])
        for other in self.deployments:
            if other is not self.acting and key_id in other.owned:
                self.deleted_of_other.append(
                    f"the deployment in {self.acting.account} deleted key {key_id} of the "
                    f"deployment in {other.account}"
                )

    def current_works(self, deployment: Deployment) -> bool:
        with self.in_account(deployment):
            return deployment.world.current_works()


@pytest.fixture
def two_deployments(
    kion: KionStandIn,
    make_world: Callable[..., RotationWorld],
    monkeypatch: pytest.MonkeyPatch,
    record_property: Callable[[str, object], None],
) -> Iterator[TwoDeployments]:
    pair = TwoDeployments(kion, monkeypatch)
    first_key = next(iter(kion.api_keys.items()))
    for account, (key_id, api_key) in (
        (DEFAULT_ACCOUNT_ID, first_key),
        (SECOND_ACCOUNT, kion.create_api_key()),
    ):
        deployment = Deployment(account, None)  # type: ignore[arg-type]
        with pair.in_account(deployment):
            world = make_world(adopt=False, name=INSTALLATION)
            service = LocalRotationService(in_process_function(renewal_handler), account_id=account)
            deployment.world = KeyRenewalWorld(world, service)
            deployment.world.store_key(api_key, key_id)
            described = deployment.world.secretsmanager.describe_secret(
                SecretId=deployment.world.secret_id
            )
            deployment.arn, deployment.name = described["ARN"], described["Name"]
        deployment.owned.add(key_id)
        pair.deployments.append(deployment)
    kion.observers.append(pair.observe)
    try:
        yield pair
    finally:
        kion.observers.remove(pair.observe)
        record_property(KION_KEY_OTHER_DEPLOYMENT_DELETED, len(pair.deleted_of_other))


def test_the_deployments_share_secret_names_but_not_arns(two_deployments: TwoDeployments) -> None:
    first, second = two_deployments.deployments
    assert first.name == second.name
    assert first.arn != second.arn


def test_alternating_renewals_leave_each_deployment_its_own_working_key(
    two_deployments: TwoDeployments, kion: KionStandIn
) -> None:
    first, second = two_deployments.deployments
    for _ in range(2):
        two_deployments.renew(first)
        two_deployments.renew(second)
    assert two_deployments.deleted_of_other == []
    assert two_deployments.current_works(first)
    assert two_deployments.current_works(second)
    assert kion.requests_to("DELETE", "/api/v3/app-api-key/1") != []  # first's own, replaced


def test_a_key_of_the_other_deployment_left_by_a_lost_reply_is_not_taken_for_a_spare(
    two_deployments: TwoDeployments, kion: KionStandIn
) -> None:
    first, second = two_deployments.deployments
    with two_deployments.in_account(second):
        token = second.world.start()
        orphan = kion.api_keys.issue(second.world.key_name(token))  # Kion made it; no reply
    second.owned.add(orphan.id)
    two_deployments.renew(first)
    assert orphan.id in kion.api_keys  # first left it alone
    with two_deployments.in_account(second):
        second.world.run_steps(token)  # second's own retry deletes it before making another
    assert orphan.id not in kion.api_keys
    assert two_deployments.deleted_of_other == []


def test_a_key_the_other_deployment_named_the_old_way_is_not_taken_for_a_spare(
    two_deployments: TwoDeployments, kion: KionStandIn
) -> None:
    """Before 0.2 both deployments named their keys alike; the version tells them apart."""
    first, second = two_deployments.deployments
    version = str(uuid.uuid4())
    legacy = kion.api_keys.issue(f"{KEY_NAME_PREFIX}/{second.name}/{version[:VERSION_IN_NAME]}")
    with two_deployments.in_account(second):
        second.world.secretsmanager.put_secret_value(
            SecretId=second.world.secret_id,
            ClientRequestToken=version,
            SecretString=json.dumps(
                {
                    "api_key": legacy.key,
                    "api_key_id": legacy.id,
                    "installation_secret_id": second.world.smtp.secret_id,
                }
            ),
        )
    second.owned.add(legacy.id)
    two_deployments.renew(first)
    assert legacy.id in kion.api_keys
    assert two_deployments.current_works(second)
    assert two_deployments.deleted_of_other == []
