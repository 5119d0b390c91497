"""At IAM's two-key limit, what the rotation says and logs, word for word: an operator acts on the
error's cause and fix, and audits key deletions by the log lines that name each key."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ses_smtp_rotator.functions.errors import KeyLimitError
from ses_smtp_rotator.functions.services import aws_clients as aws
from ses_smtp_rotator.local.rotation_service import RotationStepError


def records(function_logs: Any, message: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in function_logs.getvalue().splitlines() if line]
    return [line for line in lines if line.get("message") == message]


def create_secret_refused(world: Any) -> KeyLimitError:
    token = world.start()
    with pytest.raises(RotationStepError) as raised:
        world.step("createSecret", token)
    error = raised.value.error
    assert isinstance(error, KeyLimitError)
    return error


def held(world: Any) -> str:
    """The user's keys as the error lists them: oldest first."""
    listed = world.iam.list_access_keys(UserName=world.installation.iam_user_name)
    keys = sorted(listed["AccessKeyMetadata"], key=lambda key: key["CreateDate"])
    return ", ".join(key["AccessKeyId"] for key in keys)


def test_two_keys_in_use(world):
    current_key = world.current()["username"]
    other = world.iam.create_access_key(UserName=world.installation.iam_user_name)["AccessKey"]
    world.kion.app_config["smtp_username"] = other["AccessKeyId"]
    user = world.installation.iam_user_name

    error = create_secret_refused(world)

    assert error.cause == (
        f"IAM user {user} already has two access keys ({held(world)}) and both are in use: "
        f"AWSCURRENT holds {current_key}, Kion is configured with {other['AccessKeyId']}."
    )
    assert error.fix == (
        "Point Kion at the AWSCURRENT credential (or put Kion's credential into the secret as "
        "AWSCURRENT), then delete the key neither uses in IAM and rotate again."
    )


def test_a_spare_key_that_may_not_be_deleted_is_named_with_the_reason(world):
    current_key = world.current()["username"]
    spare = world.iam.create_access_key(UserName=world.installation.iam_user_name)["AccessKey"]
    user = world.installation.iam_user_name  # its spare key is seconds old: a step may use it

    error = create_secret_refused(world)

    prefix = (
        f"IAM user {user} already has two access keys ({held(world)}); AWSCURRENT holds "
        f"{current_key}, Kion is configured with {current_key}, and the other may not be "
        f"deleted: {spare['AccessKeyId']} was created "
    )
    assert error.cause.startswith(prefix), error.cause
    assert error.cause.endswith("s).")
    assert "may belong to a rotation step still running (wait" in error.cause
    assert error.fix == (
        "Rotate again after the wait it names; a key that serves another consumer needs its own "
        "IAM user (give this installation a user of its own), and one you know to be unused you "
        "may delete in IAM."
    )


@pytest.fixture
def another_consumer_takes_the_room() -> Iterator[Callable[[Any], list[str]]]:
    """``take(world)``: right after the function deletes a key, someone else creates one for the
    same user (seen on the function's own IAM client, at the wire). Returns the keys made."""
    made: list[str] = []
    events = aws.client("iam").meta.events

    def take(world: Any) -> list[str]:
        def take_the_room(**_: Any) -> None:
            if not made:
                key = world.iam.create_access_key(UserName=world.installation.iam_user_name)
                made.append(key["AccessKey"]["AccessKeyId"])

        events.register("after-call.iam.DeleteAccessKey", take_the_room, unique_id="take-room")
        return made

    yield take
    events.unregister("after-call.iam.DeleteAccessKey", unique_id="take-room")


def test_room_taken_by_another_key_while_it_was_made_stops_the_rotation(
    world, another_consumer_takes_the_room, function_logs
):
    current_key = world.current()["username"]
    spare = world.iam.create_access_key(UserName=world.installation.iam_user_name)["AccessKey"]
    world.backdate_keys()
    user = world.installation.iam_user_name
    held_before = held(world)
    made = another_consumer_takes_the_room(world)

    error = create_secret_refused(world)

    [intruder] = made
    assert world.access_key_ids() == {current_key, intruder}
    assert error.cause == (
        f"IAM user {user} already has two access keys ({held_before}) and both are in use: "
        f"AWSCURRENT holds {current_key}, Kion is configured with {current_key}."
    )
    [deleted] = records(function_logs, "Deleted unused access key")
    assert deleted["access_key_id"] == spare["AccessKeyId"]


def test_making_room_is_logged_with_the_key_deleted(world, function_logs):
    spare = world.iam.create_access_key(UserName=world.installation.iam_user_name)["AccessKey"]
    world.backdate_keys()

    world.rotate()

    [deleted] = records(function_logs, "Deleted unused access key")
    assert deleted["access_key_id"] == spare["AccessKeyId"]
    assert deleted["level"] == "INFO"


def test_finishing_with_the_key_of_an_abandoned_rotation_is_logged(world, function_logs):
    abandoned = world.start()
    world.run_steps(abandoned, ("createSecret", "setSecret"))
    kion_key = world.kion_credential()[0]
    world.secretsmanager.update_secret_version_stage(
        SecretId=world.secret_id, VersionStage="AWSPENDING", RemoveFromVersionId=abandoned
    )

    world.rotate()

    [finishing] = records(
        function_logs, "Kion runs on a key from an unfinished rotation; finishing with it"
    )
    assert finishing["access_key_id"] == kion_key
    assert world.current()["username"] == kion_key


def test_adoption_names_no_current_key(make_world):
    world = make_world(adopt=True)
    hand_made = world.kion_credential()[0]
    spare = world.iam.create_access_key(UserName=world.installation.iam_user_name)["AccessKey"]

    error = create_secret_refused(world)

    assert error.cause.startswith(
        f"IAM user {world.installation.iam_user_name} already has two access keys "
        f"({held(world)}); AWSCURRENT holds none, Kion is configured with {hand_made}, and the "
        f"other may not be deleted: {spare['AccessKeyId']} was created "
    ), error.cause


def test_room_taken_on_adoption_with_kion_on_no_key_names_neither(
    make_world, another_consumer_takes_the_room
):
    world = make_world(adopt=True)
    world.kion.app_config["smtp_username"] = ""  # Kion not set up to send yet
    world.iam.create_access_key(UserName=world.installation.iam_user_name)
    world.backdate_keys()
    held_before = held(world)
    another_consumer_takes_the_room(world)

    error = create_secret_refused(world)

    assert error.cause == (
        f"IAM user {world.installation.iam_user_name} already has two access keys "
        f"({held_before}) and both are in use: AWSCURRENT holds none, Kion is configured with "
        "none."
    )


def test_every_refused_key_is_named_with_its_reason(make_world):
    """On adoption with Kion not set up yet, neither key is in use, and both are too young to
    delete: the error names no current key, no Kion key, and each refusal."""
    world = make_world(adopt=True)
    world.kion.app_config["smtp_username"] = ""
    world.iam.create_access_key(UserName=world.installation.iam_user_name)
    first, second = held(world).split(", ")

    error = create_secret_refused(world)

    assert error.cause.startswith(
        f"IAM user {world.installation.iam_user_name} already has two access keys "
        f"({first}, {second}); AWSCURRENT holds none, Kion is configured with none, and the "
        f"other may not be deleted: {first} was created "
    ), error.cause
    assert f" s); {second} was created " in error.cause
