"""A step can run for minutes after its guard check. Right before each effect it checks its
version is still AWSPENDING, and createSecret never deletes a key young enough to belong to a
step still running. The race: T1 waits in setSecret, the operator abandons it and starts T2 at
the key limit, then T1 resumes."""

from functools import partial

import pytest

from ses_smtp_rotator.local.rotation_service import RotationStepError
from smtp_rotation import handler
from smtp_rotation.errors import KeyLimitError, RotationStateError
from smtp_rotation.rotation import Rotation


def abandon(world, token):
    world.secretsmanager.update_secret_version_stage(
        SecretId=world.secret_id, VersionStage="AWSPENDING", RemoveFromVersionId=token
    )


@pytest.fixture
def pause_in_set_secret(world, monkeypatch):
    """``pause(action)``: SES refuses every login until the next rotation step first sleeps
    (T1 waiting for SES); that sleep runs ``action``, then SES accepts again."""
    pending: list = []

    def sleep(seconds):
        while pending:
            pending.pop()()
        world.smtp.refuse_all = False

    def pause(action):
        world.smtp.refuse_all = True
        pending.append(action)

    monkeypatch.setattr(handler, "Rotation", partial(Rotation, sleep=sleep))
    return pause


def test_t1_resuming_after_the_operator_abandoned_it_and_started_t2_leaves_kion_working(
    world, pause_in_set_secret
):
    kion_before = world.kion_credential()
    t1 = world.start()
    world.step("createSecret", t1)
    t1_key = world.version_fields(VersionId=t1)["username"]
    t2_errors = []

    def operator_abandons_t1_and_starts_t2():
        abandon(world, t1)
        t2 = world.start()
        with pytest.raises(RotationStepError) as raised:
            world.step("createSecret", t2)  # at the key limit: K0 (Kion) and T1's young key
        t2_errors.append(raised.value.error)
        abandon(world, t2)

    pause_in_set_secret(operator_abandons_t1_and_starts_t2)
    with pytest.raises(RotationStepError) as raised:
        world.step("setSecret", t1)

    # T2 did not delete T1's key, which T1 was still proving...
    assert isinstance(t2_errors[0], KeyLimitError)
    assert "may belong to a rotation step still running" in t2_errors[0].cause
    assert t1_key in world.access_key_ids()
    # ...and T1, resumed, did not give Kion a key of an abandoned rotation.
    assert isinstance(raised.value.error, RotationStateError)
    assert "stopped before giving Kion the new key" in raised.value.error.cause
    assert world.kion_credential() == kion_before
    assert world.kion_authenticates()
    # Once T1's key is old enough, a new rotation deletes it (it is recorded in T1's version).
    world.backdate_keys()
    world.rotate()
    assert t1_key not in world.access_key_ids()
    assert world.converged()


def test_without_the_age_rule_t2_would_delete_the_key_t1_hands_to_kion(
    world, pause_in_set_secret, monkeypatch
):
    # The same race with a key older than the rule's bound (a function timeout of 0 s): T2 may
    # delete T1's key, and T1 must then fail rather than hand Kion a deleted key.
    monkeypatch.setenv("FUNCTION_TIMEOUT_SECONDS", "0")
    kion_before = world.kion_credential()
    t1 = world.start()
    world.step("createSecret", t1)
    t1_key = world.version_fields(VersionId=t1)["username"]

    def operator_abandons_t1_and_starts_t2():
        abandon(world, t1)
        world.backdate_keys()
        world.step("createSecret", world.start())

    pause_in_set_secret(operator_abandons_t1_and_starts_t2)
    with pytest.raises(RotationStepError):
        world.step("setSecret", t1)

    assert t1_key not in world.access_key_ids()
    assert world.kion_credential() == kion_before
    assert world.kion_authenticates()


def test_a_rotation_abandoned_while_set_secret_waits_never_reaches_kion(world, pause_in_set_secret):
    kion_before = world.kion_credential()
    token = world.start()
    world.step("createSecret", token)
    pause_in_set_secret(lambda: abandon(world, token))

    with pytest.raises(RotationStepError) as raised:
        world.step("setSecret", token)

    assert isinstance(raised.value.error, RotationStateError)
    assert world.kion_credential() == kion_before
    assert world.kion.requests_to("PATCH") == []
