"""A step can run for minutes after its guard check. Right before each effect it checks its
version is still AWSPENDING, and createSecret never deletes a key young enough to belong to a
step still running. The race: T1 waits in setSecret, the operator abandons it and starts T2 at
the key limit, then T1 resumes."""

from functools import partial

import pytest

from ses_smtp_rotator.functions.errors import KeyLimitError, RotationStateError
from ses_smtp_rotator.functions.services import aws_clients as aws
from ses_smtp_rotator.functions.services.smtp_password import derive_smtp_password
from ses_smtp_rotator.functions.smtp_rotation import handler
from ses_smtp_rotator.functions.smtp_rotation.steps import Rotation
from ses_smtp_rotator.local.rotation_service import RotationStepError


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


@pytest.fixture
def on_the_wire(world):
    """``on_the_wire(event, action)``: ``action`` runs once when the function's own client
    makes the call ``event`` names (botocore's event, e.g. ``before-call.iam.ListAccessKeys``)."""
    registered: list[tuple] = []

    def install(event: str, action) -> None:
        service = event.split(".")[1]
        fired: list[bool] = []

        def once(**_):
            if not fired:
                fired.append(True)
                action()

        events = aws.client(service).meta.events
        events.register(event, once, unique_id=f"on-the-wire-{event}")
        registered.append((events, event))

    yield install
    for events, event in registered:
        events.unregister(event, unique_id=f"on-the-wire-{event}")


@pytest.mark.parametrize(
    ("labels", "described"), [((), "unlabelled"), (("HELD-A", "HELD-B"), "HELD-A, HELD-B")]
)
def test_abandoned_while_create_secret_looks_for_room_it_deletes_no_key(
    world, on_the_wire, labels, described
):
    spare = world.iam.create_access_key(UserName=world.installation.iam_user_name)["AccessKey"]
    world.backdate_keys()
    keys_before = world.access_key_ids()
    token = world.start()

    def abandoned_and_labelled_by_hand() -> None:
        abandon(world, token)
        for label in labels:
            world.secretsmanager.update_secret_version_stage(
                SecretId=world.secret_id, VersionStage=label, MoveToVersionId=token
            )

    on_the_wire("before-call.iam.ListAccessKeys", abandoned_and_labelled_by_hand)

    with pytest.raises(RotationStepError) as raised:
        world.step("createSecret", token)

    error = raised.value.error
    assert isinstance(error, RotationStateError)
    assert error.cause == (
        f"Version {token} is no longer AWSPENDING (it is {described}); stopped before "
        f"deleting unused access key {spare['AccessKeyId']}."
    )
    assert error.fix == (
        "The rotation was abandoned or replaced while this step ran; nothing was changed. Start "
        "a new rotation if the secret still needs one."
    )
    assert world.access_key_ids() == keys_before


def test_current_moved_away_while_finish_secret_ran_it_keeps_the_replaced_key(world, on_the_wire):
    replaced = world.current()["username"]
    previous_version = world.current_version_id()
    token = world.start()
    world.run_steps(token, ("createSecret", "setSecret", "testSecret"))

    def move_current_back() -> None:  # someone puts the old version back as AWSCURRENT
        world.secretsmanager.update_secret_version_stage(
            SecretId=world.secret_id,
            VersionStage="AWSCURRENT",
            MoveToVersionId=previous_version,
            RemoveFromVersionId=token,
        )

    on_the_wire("after-call.secretsmanager.UpdateSecretVersionStage", move_current_back)
    with pytest.raises(RotationStepError) as raised:
        world.step("finishSecret", token)

    error = raised.value.error
    assert isinstance(error, RotationStateError)
    assert error.cause.startswith(f"Version {token} is no longer AWSCURRENT (it is ")
    assert error.cause.endswith(f"); stopped before deactivating the replaced key {replaced}.")
    assert world.key_statuses()[replaced] == "Active"


def test_finish_again_judges_kion_by_its_username_alone(world, on_the_wire):
    """finishSecret stopped after moving AWSCURRENT; run again, it retires the key left behind.
    It asks Kion whom it sends as, not its password (testSecret proved that): another password
    in SES form shown by Kion meanwhile does not stop it."""
    replaced = world.current()["username"]
    token = world.start()
    world.run_steps(token, ("createSecret", "setSecret", "testSecret"))

    def killed() -> None:
        raise TimeoutError("the function was stopped right after moving AWSCURRENT")

    on_the_wire("after-call.secretsmanager.UpdateSecretVersionStage", killed)
    with pytest.raises(RotationStepError):
        world.step("finishSecret", token)
    assert world.current_version_id() == token
    assert replaced in world.access_key_ids()
    world.kion.app_config["smtp_password"] = derive_smtp_password(
        "another-secret-access-key-of-forty-chars0", "us-east-1"
    )

    world.step("finishSecret", token)

    assert world.key_statuses()[replaced] == "Inactive"
    assert replaced in world.retired_keys()
