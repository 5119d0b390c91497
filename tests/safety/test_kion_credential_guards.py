"""Every branch that guards Kion's credential, run: the checks of Kion's username and password in
testSecret and finishSecret, the password forms Kion may hide it in, the scrubbing of what Kion
echoes back, and the key limit's care for the key Kion runs on.

Where a test changes Kion behind the rotation's back (as a person editing Kion's settings would),
the step it then runs is invoked directly, outside the invariant checks: Kion holding a credential
SES refuses is then the test's doing, not the function's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from fault_injection import CallSite
from safety_harness import ABANDON, REINVOKE, RESUME, RETRY, STEADY, SafetyRun

from ses_smtp_rotator.functions import errors
from ses_smtp_rotator.local.kion_server import KionStandIn
from ses_smtp_rotator.local.rotation_service import STEPS, RotationStepError

MASKED_FORMS = ["", "********", "*****", "REDACTED", "*" * 44, None]


def eventually(condition: Callable[[], bool], bound: float = 30.0) -> bool:
    """Whether ``condition`` comes true, polled until the (generous) bound: a wait for an event,
    not a measure of time."""
    deadline = time.monotonic() + bound
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def step_error(run: SafetyRun, step: str, token: str) -> BaseException:
    """Invoke ``step`` with no invariant check after it; return what it raised."""
    with pytest.raises(RotationStepError) as raised:
        run.world.step(step, token)
    return raised.value.error


def rotation_stopped_before(run: SafetyRun, step: str) -> str:
    token = run.world.start()
    assert run.run(token, STEPS[: STEPS.index(step)]) is None
    return token


def test_kion_with_the_right_username_and_a_wrong_password_fails_test_secret(
    make_run: Callable[[str], SafetyRun],
) -> None:
    run = make_run(STEADY)
    token = rotation_stopped_before(run, "testSecret")
    right = run.world.kion_credential()[1]
    run.world.kion.app_config["smtp_password"] = right[:-4] + "AAAA"

    error = step_error(run, "testSecret", token)

    assert type(error) is errors.KionStateError
    assert "password does not belong to access key" in error.cause
    assert "rotate again" in error.fix
    run.world.kion.app_config["smtp_password"] = right  # as the error's fix has it
    assert run.run(token, STEPS[2:]) is None
    run.assert_converged()


@pytest.mark.parametrize("step", ["testSecret", "finishSecret"])
def test_kion_on_another_username_fails_the_step_and_changes_nothing(
    step: str, make_run: Callable[[str], SafetyRun]
) -> None:
    """Someone put the old key back into Kion during the rotation."""
    run = make_run(STEADY)
    old = run.world.kion_credential()
    token = rotation_stopped_before(run, step)
    new = run.world.kion_credential()
    keys, stages = run.world.access_key_ids(), run.world.stages()
    run.world.kion.app_config.update(smtp_username=old[0], smtp_password=old[1])

    error = step_error(run, step, token)

    assert type(error) is errors.KionStateError
    assert f"Kion's SMTP username is {old[0]}, not the new access key {new[0]}" in error.cause
    assert (run.world.access_key_ids(), run.world.stages()) == (keys, stages)
    run.world.kion.app_config.update(smtp_username=new[0], smtp_password=new[1])
    assert run.run(token, STEPS[STEPS.index(step) :]) is None
    run.assert_converged()


def test_kion_with_no_smtp_username_fails_test_secret(make_run: Callable[[str], SafetyRun]) -> None:
    run = make_run(STEADY)
    token = rotation_stopped_before(run, "testSecret")
    run.world.kion.app_config.update(smtp_username="")

    error = step_error(run, "testSecret", token)

    assert type(error) is errors.KionStateError
    assert "Kion's SMTP username is empty" in error.cause


@pytest.mark.parametrize("shown_as", MASKED_FORMS, ids=repr)
def test_a_password_kion_hides_passes_test_secret(
    shown_as: str | None,
    make_run: Callable[[str], SafetyRun],
    kion: KionStandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kion may hide the password it holds; testSecret then judges by the username alone."""
    shows = KionStandIn._get_app_config

    def hides(stand_in: KionStandIn) -> tuple[int, dict[str, Any]]:
        status, reply = shows(stand_in)
        reply["data"]["smtp_password"] = shown_as
        return status, reply

    monkeypatch.setattr(KionStandIn, "_get_app_config", hides)
    run = make_run(STEADY)

    assert run.rotate() is None
    run.assert_converged()


def test_a_kion_error_that_echoes_the_new_password_or_the_api_key_is_scrubbed(
    make_run: Callable[[str], SafetyRun], kion: KionStandIn
) -> None:
    run = make_run(STEADY)
    token = rotation_stopped_before(run, "setSecret")
    password = run.world.version_fields(VersionId=token)["password"]
    kion.fail_requests(
        400, count=None, methods=["PATCH"], message=f"rejected {password} from {kion.api_key}"
    )

    failure = run.invoke("setSecret", token)

    assert failure is not None
    assert type(failure.error) is errors.KionRequestError
    assert "Kion said: rejected *** from ***" in failure.error.cause
    kion.clear_faults()
    run.finish(failure, RETRY)
    run.assert_converged()


def test_a_key_left_by_an_abandoned_rotation_is_reused_only_in_its_region(
    make_run: Callable[[str], SafetyRun],
) -> None:
    """At the key limit, Kion's key from an abandoned rotation is kept and finished with, but
    its stored password only works in the region it was derived for."""
    run = make_run(RESUME)
    kion_key = run.world.kion_credential()[0]
    run.world.edit_current(ses_region="us-west-2")

    failure = run.rotate()

    assert failure is not None
    assert type(failure.error) is errors.KeyLimitError
    assert f"Kion is configured with {kion_key}" in failure.error.cause
    assert kion_key in run.world.access_key_ids()
    run.world.edit_current(ses_region="us-east-1")
    run.finish(failure, ABANDON)
    run.assert_converged()


def test_at_the_key_limit_the_key_kion_runs_on_is_never_the_spare(
    make_run: Callable[[str], SafetyRun],
) -> None:
    """The abandoned rotation left two keys, AWSCURRENT's and Kion's: neither is unused, so the
    rotation finishes with Kion's instead of deleting it."""
    run = make_run(RESUME)
    kion_key = run.world.kion_credential()[0]

    assert run.rotate() is None

    assert run.world.current()["username"] == kion_key
    assert run.world.key_statuses()[kion_key] == "Active"
    assert set(run.world.key_statuses().values()) == {"Active", "Inactive"}  # the old one retired


def test_a_patch_kion_answers_after_the_function_gave_up_never_applies(
    make_run: Callable[[str], SafetyRun], kion: KionStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The function stops waiting for Kion and reports a timeout: Kion must then still hold the
    old credential, whenever its late answer would have come. Asserted on the eventual state:
    the stand-in logs the request once it has decided, with no status, as a dropped reply."""
    run = make_run(STEADY)
    before = run.world.kion_credential()
    monkeypatch.setenv("KION_TIMEOUT_SECONDS", "0.1")
    monkeypatch.setenv("KION_RETRIES", "0")
    token = rotation_stopped_before(run, "setSecret")

    def slow_from_the_patch_on(site: CallSite) -> None:
        if site.call == "kion.PATCH-app-config":
            kion.delay = 0.5

    run.injector.on_site = slow_from_the_patch_on

    failure = run.invoke("setSecret", token)

    assert failure is not None
    assert type(failure.error) is errors.KionConnectionError
    assert "timed out" in failure.error.cause
    assert eventually(lambda: bool(kion.requests_to("PATCH"))), "the stand-in never decided"
    assert [request.status for request in kion.requests_to("PATCH")] == [None]
    assert run.world.kion_credential() == before
    kion.clear_faults()
    run.injector.on_site = lambda site: None
    monkeypatch.setenv("KION_TIMEOUT_SECONDS", "2")
    run.finish(failure, REINVOKE)
    run.assert_converged()
