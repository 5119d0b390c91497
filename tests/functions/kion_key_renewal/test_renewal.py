"""The Kion API key renews itself as a Secrets Manager rotation: create, then delete the old key."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import pytest
from kion_key_world import KeyRenewalWorld

from ses_smtp_rotator.functions.errors import RotationStateError
from ses_smtp_rotator.functions.kion_key_renewal.key_life import KionApiKeyExpiredError
from ses_smtp_rotator.functions.kion_key_renewal.steps import KionKeyLimitError
from ses_smtp_rotator.local.kion_server import KionStandIn
from ses_smtp_rotator.local.rotation_service import RotationStepError

KEYS = "/api/v3/app-api-key"


def test_a_renewal_creates_a_named_key_stores_it_with_its_id_then_deletes_the_old_key(
    renewal: KeyRenewalWorld, kion: KionStandIn
) -> None:
    before = renewal.current()
    token = renewal.renew()
    after = renewal.current()
    assert after["api_key"] != before["api_key"]
    assert after["installation_secret_id"] == before["installation_secret_id"]
    new = renewal.record(after["api_key_id"])
    assert new is not None
    assert new.name == renewal.key_name(token)
    assert renewal.works(after["api_key"])
    assert renewal.record(before["api_key_id"]) is None  # the old key is gone
    assert not renewal.works(before["api_key"])
    calls = [(r.method, r.path) for r in kion.request_log if "app-api-key" in r.path]
    assert ("POST", KEYS) in calls
    assert calls.index(("POST", KEYS)) < calls.index(("DELETE", f"{KEYS}/{before['api_key_id']}"))
    assert all(not path.endswith("/rotate") for _, path in calls)


def test_the_smtp_rotation_runs_on_the_renewed_key(renewal: KeyRenewalWorld) -> None:
    renewal.renew()
    renewal.smtp.rotate()
    assert renewal.smtp.converged()


def test_a_key_left_by_a_lost_reply_is_found_by_name_and_deleted_before_another_is_made(
    renewal: KeyRenewalWorld, kion: KionStandIn
) -> None:
    token = renewal.start()
    orphan = kion.api_keys.issue(renewal.key_name(token))  # Kion made it; no reply
    kion.request_log.clear()
    renewal.run_steps(token)
    assert renewal.record(orphan.id) is None
    logged = [(r.method, r.path) for r in kion.request_log]
    assert logged.index(("DELETE", f"{KEYS}/{orphan.id}")) < logged.index(("POST", KEYS))
    assert [k.id for k in renewal.renewal_keys()] == [renewal.current()["api_key_id"]]


def test_rerunning_create_secret_makes_no_second_key(renewal: KeyRenewalWorld) -> None:
    token = renewal.start()
    renewal.step("createSecret", token)
    renewal.step("createSecret", token)
    assert len(renewal.renewal_keys()) == 1


def test_at_the_limit_spare_keys_of_earlier_renewals_are_deleted_and_held_ones_kept(
    renewal: KeyRenewalWorld, kion: KionStandIn
) -> None:
    kion.app_config["app_api_key_limit"] = 3
    abandoned = kion.api_keys.issue(renewal.key_name("abandoned-rotation"))
    foreign = kion.api_keys.issue("ses-smtp-rotator/another-installation/12345678")
    held_id = renewal.current()["api_key_id"]
    renewal.renew()
    assert renewal.record(abandoned.id) is None
    assert renewal.record(foreign.id) is not None
    assert renewal.record(held_id) is None  # replaced, then deleted by finishSecret
    assert renewal.current_works()


def test_at_the_limit_with_no_spare_key_the_error_names_the_keys_and_deletes_nothing(
    renewal: KeyRenewalWorld, kion: KionStandIn
) -> None:
    kion.app_config["app_api_key_limit"] = 2
    kion.api_keys.issue("a colleague's script")
    before = set(kion.api_keys)
    with pytest.raises(RotationStepError) as failure:
        renewal.renew()
    error = failure.value.error
    assert isinstance(error, KionKeyLimitError)
    assert "app_api_key_limit is 2" in error.cause
    assert "a colleague's script" in error.cause
    assert "Fix: Delete a key" in str(error)
    assert set(kion.api_keys) == before
    assert renewal.current_works()


def test_a_hand_made_first_key_without_an_id_is_left_to_expire(
    make_renewal: Callable[..., KeyRenewalWorld], function_logs: io.StringIO
) -> None:
    renewal = make_renewal(key_id_known=False)
    hand_made = renewal.current()["api_key"]
    renewal.renew()
    assert renewal.works(hand_made)  # nothing proves which Kion key it is: not deleted
    assert isinstance(renewal.current()["api_key_id"], int)
    warnings = [json.loads(line) for line in function_logs.getvalue().splitlines()]
    assert [w["message"] for w in warnings if w["level"] == "WARNING"] == [
        "The replaced Kion API key has no recorded id, so it is left as it is: Kion ends it when "
        "app_api_key_lifespan runs out; delete it in Kion to end it sooner"
    ]


def test_an_expired_key_fails_with_the_command_that_fixes_it(
    renewal: KeyRenewalWorld, kion: KionStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = kion.clock() + 31 * 86_400  # the default lifespan is 30 days
    monkeypatch.setattr(kion, "clock", lambda: later)
    with pytest.raises(RotationStepError) as failure:
        renewal.renew()
    error = failure.value.error
    assert isinstance(error, KionApiKeyExpiredError)
    assert "set-kion-key" in error.fix
    assert renewal.renewal_keys() == []


def test_a_key_stored_without_its_installation_names_the_fix(
    renewal: KeyRenewalWorld, kion: KionStandIn
) -> None:
    renewal.secretsmanager.put_secret_value(SecretId=renewal.secret_id, SecretString=kion.api_key)
    with pytest.raises(RotationStepError) as failure:
        renewal.renew()
    assert isinstance(failure.value.error, RotationStateError)
    assert "installation_secret_id" in failure.value.error.cause
    assert "set-kion-key" in failure.value.error.fix


def test_an_installation_that_uses_another_key_secret_is_refused(
    renewal: KeyRenewalWorld, make_world: Callable[..., object]
) -> None:
    other = make_world(adopt=False, name="other")
    renewal.store_key(renewal.current()["api_key"], renewal.current()["api_key_id"])
    fields = renewal.current()
    fields["installation_secret_id"] = other.secret_id  # type: ignore[attr-defined]
    renewal.store_key(**{k: v for k, v in fields.items()})
    with pytest.raises(RotationStepError) as failure:
        renewal.renew()
    assert "not " in failure.value.error.cause
    assert failure.value.error.fix == (
        "Store the key with ses-smtp-rotator set-kion-key <installation secret> for the "
        "installation this key belongs to."
    )
    assert renewal.renewal_keys() == []


def test_the_configuration_check_passes_before_any_key_is_stored(
    renewal: KeyRenewalWorld,
) -> None:
    renewal.secretsmanager.put_secret_value(
        SecretId=renewal.secret_id, SecretString='{"api_key": ""}'
    )
    renewal.service.check_configuration(renewal.secret_id)


def test_no_kion_api_key_appears_in_the_logs(
    renewal: KeyRenewalWorld, kion: KionStandIn, function_logs: io.StringIO
) -> None:
    renewal.renew()
    renewal.renew()
    logs = function_logs.getvalue()
    assert "Deleted the replaced Kion API key" in logs
    for api_key in kion.api_keys.values():
        assert api_key not in logs
