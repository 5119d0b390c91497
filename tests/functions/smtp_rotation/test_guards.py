"""The standard guards: which version a step may work on, and what it leaves alone."""

import pytest

from ses_smtp_rotator.functions.errors import RotationStateError
from ses_smtp_rotator.functions.smtp_rotation.handler import lambda_handler
from ses_smtp_rotator.local.rotation_service import STEPS, LambdaContextStub, RotationStepError


def failure(world, step, token) -> BaseException:
    with pytest.raises(RotationStepError) as raised:
        world.step(step, token)
    return raised.value.error


@pytest.mark.parametrize("step", STEPS)
def test_a_token_that_is_not_a_version_of_the_secret_is_refused(world, step):
    keys_before = world.access_key_ids()
    error = failure(world, step, "00000000-0000-0000-0000-000000000000")

    assert isinstance(error, RotationStateError)
    token = "00000000-0000-0000-0000-000000000000"
    if step == "createSecret":
        assert error.cause == f"Version {token} is not a version of this secret."
        assert error.fix == (
            "This request belongs to a rotation that no longer exists; start a new rotation."
        )
    else:
        assert error.cause == (
            f"Version {token} of the secret has no value: createSecret has not finished."
        )
    assert world.access_key_ids() == keys_before
    assert world.kion_authenticates()


@pytest.mark.parametrize("step", STEPS)
def test_a_version_that_is_already_current_needs_nothing(world, step):
    token = world.rotate()
    state = (world.kion_credential(), world.access_key_ids(), world.stages())
    requests = len(world.kion.request_log)

    world.step(step, token)

    assert (world.kion_credential(), world.access_key_ids(), world.stages()) == state
    assert len(world.kion.request_log) == requests


@pytest.mark.parametrize("step", STEPS)
def test_a_version_that_is_not_pending_is_refused(world, step):
    first = world.rotate()
    world.backdate_retirements()  # the key it replaced has passed its rollback window
    world.rotate()  # the first version is now AWSPREVIOUS
    state = (world.kion_credential(), world.access_key_ids())

    error = failure(world, step, first)

    assert isinstance(error, RotationStateError)
    assert error.cause == f"Version {first} is not AWSPENDING (it is AWSPREVIOUS)."
    assert error.fix == (
        "Another rotation replaced this one; start a new rotation if the secret still needs it."
    )
    assert (world.kion_credential(), world.access_key_ids()) == state


@pytest.mark.parametrize("step", ["setSecret", "testSecret", "finishSecret"])
def test_later_steps_before_create_secret_say_so(world, step):
    token = world.start()
    error = failure(world, step, token)
    assert isinstance(error, RotationStateError)
    assert error.cause == (
        f"Version {token} of the secret has no value: createSecret has not finished."
    )
    assert error.fix == (
        "Look at the createSecret error that came before; Secrets Manager retries the "
        "rotation, or start a new one."
    )
    assert world.kion_authenticates()


@pytest.mark.parametrize(
    ("event", "named"),
    [
        ({}, "SecretId, ClientRequestToken, Step"),
        ({"SecretId": "s", "Step": "setSecret"}, "ClientRequestToken"),
        ({"SecretId": "s", "ClientRequestToken": "t"}, "Step"),
        ({"SecretId": "s", "ClientRequestToken": "t", "Step": "dropSecret"}, "Step"),
    ],
)
def test_an_event_that_is_not_a_rotation_is_refused(aws, event, named):
    with pytest.raises(RotationStateError) as raised:
        lambda_handler(event, LambdaContextStub())
    assert raised.value.cause == (
        f"The invocation is not a Secrets Manager rotation event (missing or bad: {named})."
    )
    assert raised.value.fix == (
        "Invoke this function through Secrets Manager rotation (RotateSecret), not directly."
    )


def test_a_rotation_started_while_one_is_pending_is_refused(world):
    from ses_smtp_rotator.local.rotation_service import RotationInProgressError

    token = world.start()
    world.step("createSecret", token)
    with pytest.raises(RotationInProgressError, match="isn't complete"):
        world.start()
    assert world.start(token) == token


def test_the_configuration_check_at_deploy_passes_before_the_kion_api_key_is_in(make_world):
    world = make_world(adopt=True)
    world.put_kion_api_key(" ")  # the stack creates it empty; the operator fills it in later

    world.service.check_configuration(world.secret_id)

    assert world.kion.request_log == []
    assert world.current()["username"] == ""


def test_the_configuration_check_after_a_rotation_tests_the_current_credential(world):
    world.rotate()
    world.service.check_configuration(world.secret_id)
    # setSecret, testSecret and finishSecret, then the check
    assert len(world.kion.requests_to("GET")) == 4

    world.kion.app_config["smtp_username"] = "AKIASOMEONEELSE00000"
    with pytest.raises(RotationStepError):
        world.service.check_configuration(world.secret_id)


def test_a_secret_without_a_native_rotation_schedule_is_rotated(world):
    # The stack attaches the function with no rotation rules: an EventBridge schedule or the
    # console triggers RotateSecret. The guards must not insist on RotationEnabled.
    assert not world.secretsmanager.describe_secret(SecretId=world.secret_id).get("RotationEnabled")
    world.rotate()
    assert world.converged()


@pytest.mark.parametrize(
    ("labels", "described"), [((), "unlabelled"), (("HELD-A", "HELD-B"), "HELD-A, HELD-B")]
)
def test_a_version_taken_off_awspending_is_refused_with_the_labels_it_has(world, labels, described):
    token = world.start()
    world.step("createSecret", token)
    world.secretsmanager.update_secret_version_stage(
        SecretId=world.secret_id, VersionStage="AWSPENDING", RemoveFromVersionId=token
    )
    for label in labels:
        world.secretsmanager.update_secret_version_stage(
            SecretId=world.secret_id, VersionStage=label, MoveToVersionId=token
        )
    state = (world.kion_credential(), world.access_key_ids())

    error = failure(world, "setSecret", token)

    assert isinstance(error, RotationStateError)
    assert error.cause == f"Version {token} is not AWSPENDING (it is {described})."
    assert (world.kion_credential(), world.access_key_ids()) == state
