"""finishSecret moves AWSCURRENT first and retires the replaced key after (deactivates and records
it). When it stops in between (killed, or the deactivation refused), Secrets Manager's next
finishSecret finds its version already AWSCURRENT: it must still retire the key left behind, and
only that key, and only while nothing uses it. (The fault matrix reaches these paths too; these
tests name each one.)"""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import pytest
from fault_injection import KILLED_AFTER, CallSite, Fault
from safety_harness import ADOPT, STEADY, SafetyRun

from ses_smtp_rotator.functions import errors
from ses_smtp_rotator.local.rotation_service import RotationStepError

MOVED_THEN_KILLED = Fault(
    CallSite("finishSecret", "secretsmanager.UpdateSecretVersionStage", 1), KILLED_AFTER
)


def stopped_after_the_move(run: SafetyRun) -> tuple[str, str]:
    """Rotate until finishSecret has moved AWSCURRENT and stopped; return (token, the key it
    replaced)."""
    replaced = run.before.replaced_key if run.before else ""
    run.injector.plan = MOVED_THEN_KILLED
    token = run.world.start()
    failure = run.run(token)
    assert failure is not None
    assert failure.step == "finishSecret"
    assert run.world.current_version_id() == token
    return token, replaced


@pytest.mark.parametrize("variant", [STEADY, ADOPT])
def test_finish_again_retires_the_key_left_behind(
    variant: str, make_run: Callable[[str], SafetyRun]
) -> None:
    run = make_run(variant)
    token, replaced = stopped_after_the_move(run)
    assert run.world.key_statuses()[replaced] == "Active"

    assert run.invoke("finishSecret", token) is None

    assert run.world.key_statuses()[replaced] == "Inactive"
    assert run.world.retired_keys()[replaced].adopted == (variant == ADOPT)
    run.assert_converged()


def test_finish_again_after_a_refused_deactivation_retires_it(
    make_run: Callable[[str], SafetyRun],
) -> None:
    run = make_run(STEADY)
    replaced = run.world.current()["username"]
    run.injector.deny("iam.UpdateAccessKey")
    token = run.world.start()
    failure = run.run(token)
    assert failure is not None
    assert type(failure.error) is errors.AwsPermissionError
    assert run.world.key_statuses()[replaced] == "Active"
    run.injector.denied.clear()

    assert run.invoke("finishSecret", token) is None

    assert run.world.key_statuses()[replaced] == "Inactive"
    run.assert_converged()


def test_finish_again_records_a_key_deactivated_before_its_record_was_written(
    make_run: Callable[[str], SafetyRun],
) -> None:
    """Stopped between UpdateAccessKey and the tag: the key is Inactive with no record; the next
    finishSecret records it (its window starts then), and it is not deleted meanwhile."""
    run = make_run(STEADY)
    replaced = run.world.current()["username"]
    run.injector.plan = Fault(CallSite("finishSecret", "iam.UpdateAccessKey", 1), KILLED_AFTER)
    token = run.world.start()
    failure = run.run(token)
    assert failure is not None
    assert replaced not in run.world.retired_keys()

    assert run.invoke("finishSecret", token) is None

    assert run.world.key_statuses()[replaced] == "Inactive"
    assert replaced in run.world.retired_keys()
    run.assert_converged()


def test_finish_again_with_nothing_left_behind_asks_kion_nothing(
    make_run: Callable[[str], SafetyRun],
) -> None:
    run = make_run(STEADY)
    token = run.world.start()
    assert run.run(token) is None
    keys, requests = run.world.access_key_ids(), len(run.world.kion.request_log)

    assert run.invoke("finishSecret", token) is None

    assert run.world.access_key_ids() == keys
    assert len(run.world.kion.request_log) == requests


def test_finish_again_keeps_the_key_kion_went_back_to(make_run: Callable[[str], SafetyRun]) -> None:
    """Someone put the replaced key back into Kion: it is in use, so it stays, and the step says
    why."""
    run = make_run(STEADY)
    old = run.world.kion_credential()
    token, replaced = stopped_after_the_move(run)
    run.world.kion.app_config.update(smtp_username=old[0], smtp_password=old[1])

    with pytest.raises(RotationStepError) as raised:
        run.world.step("finishSecret", token)

    assert type(raised.value.error) is errors.KionStateError
    assert f"Kion's SMTP username is {replaced}" in raised.value.error.cause
    assert replaced in run.world.access_key_ids()


def test_finish_again_on_the_first_version_of_a_secret_does_nothing(
    make_run: Callable[[str], SafetyRun],
) -> None:
    """A version AWSCURRENT with no AWSPREVIOUS before it (the secret as deployed) replaced
    nothing."""
    run = make_run(STEADY)
    keys = run.world.access_key_ids()

    assert run.invoke("finishSecret", run.world.current_version_id()) is None

    assert run.world.access_key_ids() == keys
    assert run.world.stages() == {run.world.current_version_id(): ["AWSCURRENT"]}


def test_finish_again_without_a_rollback_window_deletes_the_key_left_behind(
    make_run: Callable[[str], SafetyRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PREVIOUS_KEY_GRACE_DAYS=0 (no way back): the left-behind key goes at once, as the first
    attempt would have done."""
    monkeypatch.setenv("PREVIOUS_KEY_GRACE_DAYS", "0")
    run = make_run(STEADY)
    token, replaced = stopped_after_the_move(run)
    assert run.world.key_statuses()[replaced] == "Active"

    assert run.invoke("finishSecret", token) is None

    assert replaced not in run.world.access_key_ids()
    assert replaced not in run.world.retired_keys()


def test_finish_again_when_the_key_left_behind_is_gone_does_nothing(
    make_run: Callable[[str], SafetyRun],
) -> None:
    run = make_run(STEADY)
    token, replaced = stopped_after_the_move(run)
    user = run.world.current()["iam_user_name"]
    run.world.iam.delete_access_key(UserName=user, AccessKeyId=replaced)  # by hand, meanwhile
    keys = run.world.access_key_ids()

    assert run.invoke("finishSecret", token) is None

    assert run.world.access_key_ids() == keys
    assert run.world.kion_credential()[0] == run.world.current()["username"]


def test_finish_again_announces_the_rotation_with_the_key_it_retired(
    make_run: Callable[[str], SafetyRun], function_logs: io.StringIO
) -> None:
    run = make_run(STEADY)
    token, replaced = stopped_after_the_move(run)
    function_logs.seek(0)
    function_logs.truncate()

    assert run.invoke("finishSecret", token) is None

    lines = [json.loads(line) for line in function_logs.getvalue().splitlines() if line]
    [event] = [line["outcome_event"] for line in lines if line["message"] == "Outcome: succeeded"]
    assert event["keys"]["current"] == run.world.current()["username"]
    assert event["keys"]["deactivated"] == replaced
    [retired] = [line for line in lines if line["message"] == "Deactivated the replaced access key"]
    assert retired["access_key_id"] == replaced
