"""Rollback: the rotation function puts the replaced key back while its window runs, or refuses
with the cause and the fix and leaves Kion on a working key."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from ses_smtp_rotator.functions.retired_keys import RETIRED_TAG_PREFIX
from ses_smtp_rotator.functions.services.secrets_store import ROLLBACK
from ses_smtp_rotator.functions.smtp_rotation import handler
from ses_smtp_rotator.functions.smtp_rotation.steps import Rotation
from ses_smtp_rotator.local.rotation_service import LambdaContextStub


def roll_back(world, **fields: Any) -> dict[str, Any]:
    event = {"Action": "rollback", "SecretId": world.secret_id, **fields}
    return handler.lambda_handler(event, LambdaContextStub())


def key_statuses(world) -> dict[str, str]:
    listed = world.iam.list_access_keys(UserName=world.current()["iam_user_name"])
    return {key["AccessKeyId"]: key["Status"] for key in listed["AccessKeyMetadata"]}


@pytest.fixture
def rotated(world):
    """An installation one rotation old: key A replaced (Inactive) by key B."""
    before = world.kion_credential()
    world.rotate()
    return world, before, world.kion_credential()


def test_a_rollback_puts_the_previous_key_back_into_kion_and_awscurrent(rotated):
    world, (old_key, old_password), (new_key, _) = rotated

    report = roll_back(world)

    assert report["outcome"] == "rolled-back"
    assert world.kion_credential() == (old_key, old_password)
    assert (world.current()["username"], world.current()["password"]) == (old_key, old_password)
    assert key_statuses(world) == {old_key: "Active", new_key: "Inactive"}
    assert world.kion_authenticates()
    assert report["restored_access_key_id"] == old_key
    assert report["retired_access_key_id"] == new_key
    assert datetime.fromisoformat(report["retired_deletion_after"]) > datetime.now(UTC) + timedelta(
        days=6
    )
    assert not any(ROLLBACK in stages for stages in world.stages().values())


def test_the_key_rolled_back_from_is_recorded_as_retired_and_the_restored_one_no_longer(rotated):
    world, (old_key, _), (new_key, _) = rotated

    roll_back(world)

    tags = world.secretsmanager.describe_secret(SecretId=world.secret_id).get("Tags", [])
    recorded = {tag["Key"].removeprefix(RETIRED_TAG_PREFIX) for tag in tags}
    assert new_key in recorded
    assert old_key not in recorded


def test_the_key_rolled_back_from_becomes_the_previous_one_and_can_come_back_too(rotated):
    world, (old_key, _), (new_key, new_password) = rotated
    roll_back(world)

    again = roll_back(world)

    assert again["outcome"] == "rolled-back"
    assert world.kion_credential() == (new_key, new_password)
    assert key_statuses(world) == {new_key: "Active", old_key: "Inactive"}


def test_a_rollback_repeated_from_the_same_version_reports_it_done_instead_of_flipping_back(
    rotated,
):
    world, (old_key, _), _ = rotated
    from_version = world.current_version_id()
    roll_back(world, FromVersionId=from_version)

    repeated = roll_back(world, FromVersionId=from_version)

    assert repeated["outcome"] == "already-rolled-back"
    assert world.kion_credential()[0] == old_key


def test_a_rollback_waits_for_an_unfinished_rotation(rotated):
    world, _, (new_key, _) = rotated
    world.start()  # AWSPENDING on a new version, as Secrets Manager labels it first

    report = roll_back(world)

    assert report["outcome"] == "refused"
    assert report["error"] == "RotationInProgressError"
    assert "abandon" in report["fix"]
    assert world.kion_credential()[0] == new_key


def test_a_previous_key_deleted_by_hand_cannot_come_back(rotated):
    world, (old_key, _), (new_key, _) = rotated
    world.iam.delete_access_key(UserName=world.current()["iam_user_name"], AccessKeyId=old_key)

    report = roll_back(world)

    assert report["outcome"] == "refused"
    assert "no longer exists" in report["cause"]
    assert world.kion_credential()[0] == new_key
    assert world.kion_authenticates()


def test_a_previous_key_reactivated_by_hand_is_not_taken_over(rotated):
    world, (old_key, _), (new_key, _) = rotated
    world.iam.update_access_key(
        UserName=world.current()["iam_user_name"], AccessKeyId=old_key, Status="Active"
    )

    report = roll_back(world)

    assert report["outcome"] == "refused"
    assert "reactivated it by hand" in report["cause"]
    assert "update-access-key" in report["fix"]
    assert world.kion_credential()[0] == new_key


def test_no_rollback_after_the_window(rotated, monkeypatch):
    world, _, (new_key, _) = rotated
    later = datetime.now(UTC) + timedelta(days=7, minutes=1)
    monkeypatch.setattr(handler, "Rotation", partial(Rotation, now=lambda: later))

    report = roll_back(world)

    assert report["outcome"] == "refused"
    assert "rollback window" in report["cause"]
    assert "previousKeyGraceDays" in report["fix"]
    assert world.kion_credential()[0] == new_key


def test_a_key_that_awscurrent_did_not_replace_is_never_this_installations_to_restore(rotated):
    world, (_, old_password), (new_key, _) = rotated
    pasted = {**world.current(), "username": "AKIAOTHERCONSUMER000", "password": old_password}
    world.secretsmanager.put_secret_value(
        SecretId=world.secret_id, SecretString=json.dumps(pasted), VersionStages=["AWSPREVIOUS"]
    )

    report = roll_back(world)

    assert report["outcome"] == "refused"
    assert "not retired by this installation" in report["cause"]
    assert world.kion_credential()[0] == new_key


def test_an_adopted_key_cannot_be_rolled_back_to(make_world):
    world = make_world(adopt=True)
    world.rotate()
    kion_key = world.kion_credential()[0]

    report = roll_back(world)

    assert report["outcome"] == "refused"
    assert "adopted" in report["cause"]
    assert world.kion_credential()[0] == kion_key


def test_kion_refusing_the_patch_leaves_it_on_the_working_key(rotated):
    world, (old_key, _), (new_key, new_password) = rotated
    world.kion.fail_requests(403, count=None, methods=["PATCH"])

    report = roll_back(world)

    assert report["outcome"] == "refused"
    assert f"Kion and AWSCURRENT keep key {new_key}" in report["cause"]
    assert world.kion_credential() == (new_key, new_password)
    assert world.kion_authenticates()
    assert key_statuses(world) == {new_key: "Active", old_key: "Inactive"}
    assert not any(ROLLBACK in stages for stages in world.stages().values())


def test_ses_refusing_the_previous_key_changes_nothing(rotated):
    world, (old_key, _), (new_key, _) = rotated
    world.smtp.refuse_all = True

    report = roll_back(world)

    world.smtp.refuse_all = False
    assert report["outcome"] == "refused"
    assert report["error"] == "RollbackRefusedError"
    assert world.kion_credential()[0] == new_key
    assert world.current()["username"] == new_key
    assert key_statuses(world) == {new_key: "Active", old_key: "Inactive"}
    assert world.kion.requests_to("PATCH")[-1:] != []  # the rotation's own PATCH only
    assert len(world.kion.requests_to("PATCH")) == 1


def logged(function_logs, message: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in function_logs.getvalue().splitlines() if line]
    return [line for line in lines if line.get("message") == message]


def test_a_rollback_announces_both_keys_and_a_refused_one_logs_counts_and_answers_why(
    rotated, function_logs, capsys
):
    world, (old_key, _), (new_key, _) = rotated

    done = roll_back(world)

    [announced] = logged(function_logs, "Outcome: rolled-back")
    assert announced["secret_id"] == world.secret_id
    assert announced["action"] == "rollback"
    assert announced["outcome_event"]["outcome"] == "rolled-back"
    assert announced["outcome_event"]["keys"] == {
        "current": old_key,
        "deactivated": new_key,
        "deletion_after": done["retired_deletion_after"],
    }

    world.smtp.refuse_all = True  # SES refuses the key a second rollback would restore
    refused = roll_back(world)
    world.smtp.refuse_all = False

    assert refused == {
        "outcome": "refused",
        "installation": world.secret_id,
        "error": "RollbackRefusedError",
        "cause": refused["cause"],
        "fix": refused["fix"],
    }
    [logged_error] = logged(function_logs, refused["cause"])
    assert logged_error["level"] == "ERROR"
    assert logged_error["error"] == "RollbackRefusedError"
    assert logged_error["fix"] == refused["fix"]
    assert logged_error["secret_id"] == world.secret_id
    [event] = logged(function_logs, "Outcome: rollback-refused")
    assert event["outcome_event"]["outcome"] == "rollback-refused"
    assert event["outcome_event"]["secret_id"] == world.secret_id
    assert event["outcome_event"]["error"] == "RollbackRefusedError"
    lines = capsys.readouterr().out.splitlines()
    metrics = [json.loads(line) for line in lines if '"_aws"' in line]
    assert [m["RollbackRefused"] for m in metrics if "RollbackRefused" in m] == [[1.0]]
