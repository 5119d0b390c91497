"""IAM allows two keys per user: which one a rotation may delete, and when it must stop."""

import pytest

from ses_smtp_rotator.functions.errors import KeyLimitError
from ses_smtp_rotator.local.rotation_service import RotationStepError


def test_a_provably_unused_spare_key_is_deleted_to_make_room(world):
    in_use = world.kion_credential()[0]
    spare = world.iam.create_access_key(UserName=world.installation.iam_user_name)
    spare_id = spare["AccessKey"]["AccessKeyId"]
    world.backdate_keys()  # no step of any rotation can still be using it

    world.rotate()

    assert spare_id not in world.access_key_ids()
    assert world.key_statuses() == {world.kion_credential()[0]: "Active", in_use: "Inactive"}
    assert world.converged()


def test_adoption_with_a_spare_key_keeps_the_key_kion_uses_until_it_is_switched(make_world):
    world = make_world(adopt=True)
    hand_made = world.kion_credential()[0]
    world.iam.create_access_key(UserName=world.installation.iam_user_name)
    world.backdate_keys()
    token = world.start()

    world.step("createSecret", token)
    assert hand_made in world.access_key_ids()
    world.run_steps(token, ("setSecret", "testSecret", "finishSecret"))

    assert world.key_statuses() == {world.kion_credential()[0]: "Active", hand_made: "Inactive"}
    assert world.converged()


def test_two_keys_in_use_stop_the_rotation_with_both_named(world):
    # AWSCURRENT holds one key; Kion was pointed by hand at a second key the secret never saw.
    current_key = world.current()["username"]
    other = world.iam.create_access_key(UserName=world.installation.iam_user_name)["AccessKey"]
    world.kion.app_config["smtp_username"] = other["AccessKeyId"]
    keys_before = world.access_key_ids()
    token = world.start()

    with pytest.raises(RotationStepError) as raised:
        world.step("createSecret", token)

    error = raised.value.error
    assert isinstance(error, KeyLimitError)
    assert current_key in str(error)
    assert other["AccessKeyId"] in str(error)
    assert "delete the key neither uses" in error.fix
    assert world.access_key_ids() == keys_before


def test_a_rotation_abandoned_after_kion_was_switched_is_finished_by_the_next(world):
    first_key = world.current()["username"]
    abandoned = world.start()
    world.run_steps(abandoned, ("createSecret", "setSecret"))
    kion_key = world.kion_credential()[0]
    assert kion_key != world.current()["username"]
    # An operator abandons it by taking AWSPENDING off, then rotates again.
    world.secretsmanager.update_secret_version_stage(
        SecretId=world.secret_id, VersionStage="AWSPENDING", RemoveFromVersionId=abandoned
    )

    world.rotate()

    assert world.current()["username"] == kion_key
    assert world.key_statuses() == {kion_key: "Active", first_key: "Inactive"}
    assert world.converged()


def test_a_key_left_by_a_crashed_create_secret_is_cleaned_up_by_the_retry(world):
    # createSecret made a key but died before storing it: the key is recorded nowhere, but the
    # stack made this user for this installation alone, so the orphan is its own.
    orphan = world.iam.create_access_key(UserName=world.installation.iam_user_name)["AccessKey"]
    world.backdate_keys()
    token = world.start()

    world.run_steps(token)

    assert orphan["AccessKeyId"] not in world.access_key_ids()
    assert world.converged()


def test_a_key_from_an_abandoned_rotation_is_not_reused_after_a_region_change(world):
    abandoned = world.start()
    world.run_steps(abandoned, ("createSecret", "setSecret"))
    world.secretsmanager.update_secret_version_stage(
        SecretId=world.secret_id, VersionStage="AWSPENDING", RemoveFromVersionId=abandoned
    )
    world.edit_current(ses_region="eu-west-1")  # its password was derived for us-east-1
    keys_before = world.access_key_ids()
    token = world.start()

    with pytest.raises(RotationStepError) as raised:
        world.step("createSecret", token)

    assert isinstance(raised.value.error, KeyLimitError)
    assert world.access_key_ids() == keys_before
    assert world.kion_authenticates()


def test_a_retired_key_someone_reactivated_is_kept_and_named(world):
    world.rotate()
    retired = next(iter(world.retired_keys()))
    world.iam.update_access_key(
        UserName=world.installation.iam_user_name, AccessKeyId=retired, Status="Active"
    )
    world.backdate_retirements()  # even once its window has passed
    token = world.start()

    with pytest.raises(RotationStepError) as raised:
        world.step("createSecret", token)

    error = raised.value.error
    assert type(error) is KeyLimitError
    assert f"{retired} is Active again (reactivated)" in error.cause
    assert world.key_statuses()[retired] == "Active"
