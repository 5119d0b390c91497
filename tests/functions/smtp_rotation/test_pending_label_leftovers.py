"""AWSPENDING after a finished rotation: Secrets Manager may leave it on the version that became
AWSCURRENT, and a later write of AWSCURRENT (a settings deploy) would carry it onto AWSPREVIOUS,
where every new rotation is refused as one still in progress. finishSecret and the settings
writer leave it on neither, so the next rotation is accepted."""

from __future__ import annotations

import json
from typing import Any

from rotation_world import RotationWorld

from ses_smtp_rotator.functions.installation_settings.handler import CREDENTIAL_FIELDS, apply


def deploy_settings(world: RotationWorld, request_id: str, **changes: Any) -> None:
    """What CloudFormation's Update of the InstallationSettings resource makes the writer do."""
    current = world.current()
    old = {name: value for name, value in current.items() if name not in CREDENTIAL_FIELDS}
    new = {**old, **changes}
    event = {
        "RequestType": "Update",
        "RequestId": request_id,
        "PhysicalResourceId": world.secret_id,
        "ResourceProperties": {"SecretId": world.secret_id, "Settings": json.dumps(new)},
        "OldResourceProperties": {"SecretId": world.secret_id, "Settings": json.dumps(old)},
    }
    apply(event, world.secretsmanager)


def labelled(world: RotationWorld, stage: str) -> list[str]:
    return sorted(stages for stages in world.stages().values() if stage in stages)[0]


def leave_pending_on_current(world: RotationWorld) -> None:
    """What a finishSecret of an earlier release left behind (and Secrets Manager kept)."""
    world.secretsmanager.update_secret_version_stage(
        SecretId=world.secret_id,
        VersionStage="AWSPENDING",
        MoveToVersionId=world.current_version_id(),
    )


def test_a_finished_rotation_leaves_awspending_nowhere(world):
    world.rotate()

    assert not any("AWSPENDING" in stages for stages in world.stages().values())


def test_rotate_deploy_a_settings_change_rotate_again(world):
    world.rotate()
    deploy_settings(world, "deploy-1", send_path_check=False)

    assert world.current()["send_path_check"] is False
    assert labelled(world, "AWSPREVIOUS") == ["AWSPREVIOUS"]
    world.backdate_retirements()  # the first one's replaced key has passed its rollback window
    world.rotate()  # accepted: no AWSPENDING apart from AWSCURRENT

    assert world.current()["send_path_check"] is False
    assert world.converged()


def test_a_settings_deploy_takes_a_left_awspending_off_awscurrent_before_writing(world):
    world.rotate()
    leave_pending_on_current(world)

    deploy_settings(world, "deploy-1", send_path_check=False)

    assert not any("AWSPENDING" in stages for stages in world.stages().values())
    world.backdate_retirements()
    world.rotate()
    assert world.converged()


def test_a_settings_deploy_frees_rotations_blocked_by_awspending_on_awsprevious(world):
    world.rotate()
    leave_pending_on_current(world)
    world.edit_current(send_path_check=False)  # an earlier writer, or an operator, put past it
    assert labelled(world, "AWSPREVIOUS") == ["AWSPENDING", "AWSPREVIOUS"]

    deploy_settings(world, "deploy-1")  # nothing to change but the label

    assert not any("AWSPENDING" in stages for stages in world.stages().values())
    world.backdate_retirements()
    world.rotate()
    assert world.converged()


def test_finish_secret_run_again_takes_off_the_awspending_an_interrupted_one_left(world):
    token = world.rotate()
    leave_pending_on_current(world)  # stopped between moving AWSCURRENT and freeing AWSPENDING

    world.step("finishSecret", token)

    assert labelled(world, "AWSCURRENT") == ["AWSCURRENT"]
    assert world.converged()
