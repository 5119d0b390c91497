"""Whole rotations through the deployed handler, step by step as Secrets Manager invokes them."""

import json
from datetime import timedelta

import pytest
from rotation_world import RotationWorld

from ses_smtp_rotator.functions.errors import RollbackWindowError
from ses_smtp_rotator.local.installation import provision_installation
from ses_smtp_rotator.local.rotation_service import STEPS, RotationStepError
from ses_smtp_rotator.local.smtp_server import SesSmtpServer


def test_a_rotation_moves_kion_and_awscurrent_to_a_new_key_and_deactivates_the_old(world):
    old_username, old_password = world.kion_credential()

    token = world.rotate()

    new_username, new_password = world.kion_credential()
    assert new_username != old_username
    assert world.current() == world.version_fields(VersionId=token)
    assert world.current()["username"] == new_username
    assert world.current()["password"] == new_password
    assert world.current_version_id() == token
    assert world.key_statuses() == {new_username: "Active", old_username: "Inactive"}
    assert not world.retired_keys()[old_username].adopted
    assert world.kion_authenticates()
    assert not world.authenticates(old_username, old_password)


def test_a_second_rotation_replaces_the_first_ones_key(world):
    original_key = world.kion_credential()[0]
    world.rotate()
    first_key = world.kion_credential()[0]
    world.backdate_retirements()

    world.rotate()

    second_key = world.kion_credential()[0]
    assert second_key != first_key
    assert world.key_statuses() == {second_key: "Active", first_key: "Inactive"}
    assert original_key not in world.retired_keys()
    assert world.converged()


@pytest.mark.parametrize(
    ("adopt", "who"), [(False, "replaced key"), (True, "adopted key (not made by this product)")]
)
def test_a_second_rotation_inside_the_rollback_window_names_the_key_and_both_ways_forward(
    make_world, adopt: bool, who: str
):
    world = make_world(adopt=adopt)
    world.rotate()
    first_key = world.kion_credential()[0]
    retired = next(iter(world.retired_keys().values()))
    keys_before = world.key_statuses()

    with pytest.raises(RotationStepError) as refused:
        world.rotate()

    ends = f"{retired.deactivated_at + timedelta(days=7):%Y-%m-%d %H:%M} UTC"
    key = retired.access_key_id
    assert isinstance(refused.value.error, RollbackWindowError)
    assert refused.value.error.cause == (
        f"IAM user {world.current()['iam_user_name']} already has two access keys: "
        f"AWSCURRENT's {first_key} and {key}, the {who} the last rotation deactivated, which "
        f"stays in its rollback window until {ends}."
    )
    assert refused.value.error.fix == (
        f"Either wait: after {ends} the daily watch deletes {key} and the next rotation has "
        f"room. Or end the window now, giving up the way back to {key}: ses-smtp-rotator "
        "rotate kion/ses-smtp-credential --end-rollback-window."
    )
    assert world.key_statuses() == keys_before
    assert world.kion_credential()[0] == first_key


def test_the_first_rotation_adopts_the_key_kion_was_configured_with_by_hand(make_world):
    world = make_world(adopt=True)
    hand_made = world.kion_credential()[0]
    assert world.current()["username"] == ""

    world.rotate()

    assert world.kion_credential()[0] != hand_made
    assert world.key_statuses()[hand_made] == "Inactive"
    assert world.retired_keys()[hand_made].adopted
    assert world.converged()


def test_every_step_run_twice_gives_the_same_end_state(world):
    token = world.start()
    for step in STEPS:
        world.step(step, token)
        world.step(step, token)
        assert world.kion_authenticates()

    assert sorted(world.key_statuses().values()) == ["Active", "Inactive"]
    assert world.current_version_id() == token
    assert world.converged()


def test_create_secret_twice_creates_one_key_and_one_version(world):
    token = world.start()
    world.step("createSecret", token)
    pending = world.version_fields(VersionId=token)
    world.step("createSecret", token)

    assert world.version_fields(VersionId=token) == pending
    assert len(world.access_key_ids()) == 2


def test_a_whole_rotation_rerun_with_the_same_token_changes_nothing_more(world):
    token = world.rotate()
    after_first = (world.kion_credential(), world.access_key_ids(), world.stages())

    world.run_steps(token)

    assert (world.kion_credential(), world.access_key_ids(), world.stages()) == after_first


def test_kion_is_patched_with_the_smtp_credential_only(world):
    other_settings = {
        name: value
        for name, value in world.kion.app_config.items()
        if name not in ("smtp_username", "smtp_password")
    }

    world.rotate()

    assert {
        name: value
        for name, value in world.kion.app_config.items()
        if name not in ("smtp_username", "smtp_password")
    } == other_settings
    assert len(world.kion.requests_to("PATCH")) == 1


def test_one_message_to_the_mailbox_simulator_proves_the_send_path(world):
    world.rotate()
    new_key = world.kion_credential()[0]
    assert [(m.access_key_id, m.sender, m.recipients) for m in world.smtp.messages] == [
        (new_key, world.kion.app_config["smtp_from"], ("success@simulator.amazonses.com",))
    ]
    assert world.smtp.messages_received == 1


def test_acceptance_takes_several_logins_in_a_row(world):
    world.rotate()
    assert world.smtp.accepted_logins(world.kion_credential()[0]) >= 3 + 1 + 1  # +test, +send


def test_the_send_path_check_can_be_turned_off(world):
    world.edit_current(send_path_check=False)
    world.rotate()
    assert world.smtp.messages == []
    assert world.converged()


def test_the_settings_survive_rotation_unchanged(world):
    def settings():
        credential = ("username", "password", "replaces_access_key_id")
        return {k: v for k, v in world.current().items() if k not in credential}

    before = settings()
    world.rotate()
    assert settings() == before


def test_a_kion_api_key_stored_as_json_works(make_world):
    world = make_world(api_key_as_json=True)
    world.rotate()
    assert world.converged()


def test_a_kion_that_hides_the_password_is_checked_by_username(world):
    world.kion.mask_password = True
    world.rotate()
    assert world.converged()


def test_the_pending_version_holds_the_password_not_the_secret_access_key(world):
    token = world.start()
    world.step("createSecret", token)
    pending = world.version_fields(VersionId=token)
    assert set(pending) >= {"username", "password"}
    assert not {"secret_access_key", "SecretAccessKey", "aws_secret_access_key"} & set(pending)
    assert world.authenticates(pending["username"], pending["password"])


@pytest.fixture
def implicit_tls_smtp(certificates):
    with SesSmtpServer(certificates=certificates, implicit_tls=True) as server:
        yield server


def test_rotation_over_tls_from_the_first_byte(aws, kion, implicit_tls_smtp, rotation_service):
    installation = provision_installation(kion, implicit_tls_smtp)
    world = RotationWorld(installation, kion, implicit_tls_smtp, rotation_service)
    assert (
        json.loads(world.secretsmanager.get_secret_value(SecretId=world.secret_id)["SecretString"])[
            "smtp_tls"
        ]
        == "implicit"
    )

    world.rotate()

    assert world.converged()


def test_a_grace_window_of_0_deletes_a_key_this_installation_made_at_once(world, monkeypatch):
    monkeypatch.setenv("PREVIOUS_KEY_GRACE_DAYS", "0")
    replaced = world.current()["username"]

    world.rotate()

    assert world.key_statuses() == {world.kion_credential()[0]: "Active"}
    assert replaced not in world.retired_keys()
    assert world.converged()


def test_a_grace_window_of_0_still_keeps_an_adopted_key_for_the_watch(make_world, monkeypatch):
    monkeypatch.setenv("PREVIOUS_KEY_GRACE_DAYS", "0")
    world = make_world(adopt=True)
    hand_made = world.kion_credential()[0]

    world.rotate()

    assert world.key_statuses()[hand_made] == "Inactive"
    assert world.retired_keys()[hand_made].adopted
