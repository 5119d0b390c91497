"""The function deletes only keys it can show are this installation's: never a key that serves
another consumer of an IAM user the installation was given rather than made for it."""

import pytest

from ses_smtp_rotator.functions.errors import KeyLimitError
from ses_smtp_rotator.functions.services.smtp_password import derive_smtp_password
from ses_smtp_rotator.local.rotation_service import RotationStepError


def test_the_other_consumers_key_of_an_imported_user_is_never_deleted(make_world):
    world = make_world(iam_user_dedicated=False)
    other = world.iam.create_access_key(UserName=world.installation.iam_user_name)["AccessKey"]
    world.backdate_keys()
    token = world.start()

    with pytest.raises(RotationStepError) as raised:
        world.step("createSecret", token)

    error = raised.value.error
    assert isinstance(error, KeyLimitError)
    assert other["AccessKeyId"] in error.cause
    assert "may serve another consumer" in error.cause
    assert other["AccessKeyId"] in world.access_key_ids()
    assert world.kion_authenticates()


def test_adoption_deletes_the_key_kion_held_and_no_other(make_world):
    # Kion was set up by hand with a key of another user; the imported user's only key serves
    # another consumer. Adoption replaces Kion's key and leaves the other consumer's alone.
    world = make_world(adopt=True, iam_user_dedicated=False)
    user = world.installation.iam_user_name
    hand_made = world.kion_credential()[0]
    world.iam.delete_access_key(UserName=user, AccessKeyId=hand_made)
    world.iam.create_user(UserName="legacy-mailer")
    legacy = world.iam.create_access_key(UserName="legacy-mailer")["AccessKey"]
    world.kion.app_config.update(
        smtp_username=legacy["AccessKeyId"],
        smtp_password=derive_smtp_password(legacy["SecretAccessKey"], world.smtp.region),
    )
    other = world.iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    world.backdate_keys()

    token = world.rotate()

    assert world.version_fields(VersionId=token)["replaces_access_key_id"] == legacy["AccessKeyId"]
    assert other in world.access_key_ids()
    assert world.kion_authenticates()
    assert world.current()["username"] == world.kion_credential()[0]


def test_an_orphan_on_a_dedicated_user_is_cleaned_up_but_not_on_an_imported_one(make_world):
    world = make_world(iam_user_dedicated=False)
    orphan = world.iam.create_access_key(UserName=world.installation.iam_user_name)["AccessKey"]
    world.backdate_keys()
    token = world.start()
    with pytest.raises(RotationStepError):
        world.step("createSecret", token)
    assert orphan["AccessKeyId"] in world.access_key_ids()
    world.secretsmanager.update_secret_version_stage(
        SecretId=world.secret_id, VersionStage="AWSPENDING", RemoveFromVersionId=token
    )

    world.edit_current(iam_user_dedicated=True)
    world.rotate()

    assert orphan["AccessKeyId"] not in world.access_key_ids()
    assert world.converged()


def test_the_key_kion_held_before_an_abandoned_adoption_is_retired_not_deleted(make_world):
    world = make_world(adopt=True, iam_user_dedicated=False)
    hand_made = world.kion_credential()[0]
    abandoned = world.start()
    world.run_steps(abandoned, ("createSecret", "setSecret"))  # records hand_made as replaced
    world.secretsmanager.update_secret_version_stage(
        SecretId=world.secret_id, VersionStage="AWSPENDING", RemoveFromVersionId=abandoned
    )
    world.backdate_keys()

    world.rotate()

    # Never deleted outright, though a version records it: retired with its window, as an
    # adopted key always is (it may serve other senders).
    statuses = {
        key["AccessKeyId"]: key["Status"]
        for key in world.iam.list_access_keys(UserName=world.installation.iam_user_name)[
            "AccessKeyMetadata"
        ]
    }
    assert statuses[hand_made] == "Inactive"
    assert hand_made in world.retired_keys()
    assert world.kion_authenticates()
    assert world.current()["username"] == world.kion_credential()[0] != hand_made
