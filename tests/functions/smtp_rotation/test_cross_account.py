"""A rotation of an installation whose IAM user is in another account: its keys are made,
retired and deleted there through the access role, and nowhere else."""

import pytest
from cross_account_world import (
    ACCESS_ROLE,
    DEPLOYMENT_ACCOUNT,
    SES_ACCOUNT,
    function_role_arn,
    two_accounts,
)
from rotation_world import RotationWorld

from ses_smtp_rotator.functions.errors import AccountAccessError
from ses_smtp_rotator.functions.smtp_rotation import handler
from ses_smtp_rotator.local.installation import provision_installation
from ses_smtp_rotator.local.rotation_service import LambdaContextStub, RotationStepError


@pytest.fixture
def accounts(aws, monkeypatch, smtp):
    with two_accounts(monkeypatch, smtp) as accounts:
        yield accounts


@pytest.fixture
def make_cross_world(accounts, kion, smtp, rotation_service):
    def make(*, adopt: bool = True) -> RotationWorld:
        installation = provision_installation(kion, smtp, adopt=adopt, iam=accounts.ses_iam)
        world = RotationWorld(
            installation, kion, smtp, rotation_service, iam=accounts.ses_iam, account_id=SES_ACCOUNT
        )
        world.edit_current(ses_account=SES_ACCOUNT)
        return world

    return make


@pytest.fixture
def cross_world(make_cross_world) -> RotationWorld:
    return make_cross_world()


def test_a_rotation_makes_and_retires_keys_in_the_installations_account_only(cross_world, accounts):
    adopted = cross_world.kion_credential()[0]

    cross_world.rotate()

    new_key = cross_world.kion_credential()[0]
    assert cross_world.key_statuses() == {new_key: "Active", adopted: "Inactive"}
    assert accounts.access_keys_in(SES_ACCOUNT) == {new_key, adopted}
    assert accounts.access_keys_in(DEPLOYMENT_ACCOUNT) == set()
    assert cross_world.converged()


def test_a_later_rotation_deletes_a_retired_key_in_that_account(make_cross_world, accounts):
    cross_world = make_cross_world(adopt=False)
    cross_world.rotate()
    first_key = cross_world.kion_credential()[0]
    cross_world.backdate_retirements()
    cross_world.rotate()
    second_key = cross_world.kion_credential()[0]
    cross_world.backdate_retirements()

    cross_world.rotate()

    third_key = cross_world.kion_credential()[0]
    assert first_key not in accounts.access_keys_in(SES_ACCOUNT)
    assert accounts.access_keys_in(SES_ACCOUNT) == {second_key, third_key}
    assert accounts.access_keys_in(DEPLOYMENT_ACCOUNT) == set()


def test_the_session_names_the_installation(cross_world, accounts):
    from moto.sts.models import sts_backends

    cross_world.rotate()

    assumed = sts_backends[SES_ACCOUNT]["aws"].assumed_roles
    sessions = {role.session_name for role in assumed if role.role_arn == ACCESS_ROLE}
    assert sessions == {"ses-smtp-rotator-kion-ses-smtp-credential"}


@pytest.mark.parametrize(
    "broken",
    ["no role", "trust names another role"],
)
def test_an_access_role_that_refuses_fails_cleanly_and_the_next_run_finishes(
    cross_world, accounts, broken
):
    keys_before = accounts.access_keys_in(SES_ACCOUNT)
    current_before = cross_world.current()
    if broken == "no role":
        accounts.ses_iam.delete_role(RoleName=ACCESS_ROLE.rsplit("/", 1)[1])
    else:
        accounts.set_trust(function_role_arn("someone-else"))

    with pytest.raises(RotationStepError) as refused:
        cross_world.rotate()

    error = refused.value.error
    assert isinstance(error, AccountAccessError)
    assert SES_ACCOUNT in error.cause
    assert ACCESS_ROLE in error.cause
    assert "-Access" in error.fix
    assert "trust" in error.fix
    assert accounts.access_keys_in(SES_ACCOUNT) == keys_before
    assert cross_world.current() == current_before

    if broken == "no role":
        accounts.ses_iam.create_role(
            RoleName=ACCESS_ROLE.rsplit("/", 1)[1],
            AssumeRolePolicyDocument="{}",
        )
    accounts.set_trust(function_role_arn())
    cross_world.rotate(refused.value.token)  # Secrets Manager's retry, same token
    assert cross_world.converged()


def test_an_installation_in_another_account_without_an_access_role_names_the_fix(
    cross_world, monkeypatch
):
    monkeypatch.delenv("SES_ACCESS_ROLE_ARN")

    with pytest.raises(RotationStepError) as refused:
        cross_world.rotate()

    error = refused.value.error
    assert isinstance(error, AccountAccessError)
    assert "SES_ACCESS_ROLE_ARN is not set" in error.cause
    assert f"sesAccount {SES_ACCOUNT}" in error.fix


def test_an_installation_naming_the_deployments_own_account_takes_todays_path(world, monkeypatch):
    monkeypatch.setenv("DEPLOYMENT_ACCOUNT_ID", DEPLOYMENT_ACCOUNT)
    monkeypatch.delenv("SES_ACCESS_ROLE_ARN", raising=False)
    world.edit_current(ses_account=DEPLOYMENT_ACCOUNT)

    world.rotate()

    assert world.converged()


def test_a_rollback_reactivates_the_previous_key_in_that_account(make_cross_world, accounts):
    cross_world = make_cross_world(adopt=False)
    old_key = cross_world.kion_credential()[0]
    cross_world.rotate()
    new_key = cross_world.kion_credential()[0]

    event = {"Action": "rollback", "SecretId": cross_world.secret_id}
    report = handler.lambda_handler(event, LambdaContextStub())

    assert report["outcome"] == "rolled-back", report
    assert cross_world.key_statuses() == {old_key: "Active", new_key: "Inactive"}
    assert cross_world.kion_credential()[0] == old_key
    assert accounts.access_keys_in(DEPLOYMENT_ACCOUNT) == set()
