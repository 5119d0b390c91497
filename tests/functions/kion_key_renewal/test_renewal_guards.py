"""The renewal's guards around deleting Kion API keys, one scenario each: a key deleted in Kion
meanwhile, a replaced key still held, a key named by another deployment or the old way."""

from __future__ import annotations

import json
import uuid

import pytest
from kion_key_world import KeyRenewalWorld

from ses_smtp_rotator.functions.errors import RotationStateError
from ses_smtp_rotator.functions.kion_key_renewal.key_names import (
    KEY_NAME_PREFIX,
    VERSION_IN_NAME,
    key_name,
)
from ses_smtp_rotator.local.kion_server import KionStandIn
from ses_smtp_rotator.local.rotation_service import RotationStepError


def test_finish_refuses_a_new_key_deleted_in_kion_meanwhile_and_keeps_the_old_one_current(
    renewal: KeyRenewalWorld, kion: KionStandIn
) -> None:
    before = renewal.current()
    token = renewal.start()
    renewal.run_steps(token, ("createSecret", "setSecret", "testSecret"))
    pending = renewal.version_fields(VersionStage="AWSPENDING")
    kion.revoke_api_key(pending["api_key_id"])
    with pytest.raises(RotationStepError) as failure:
        renewal.step("finishSecret", token)
    error = failure.value.error
    assert isinstance(error, RotationStateError)
    assert error.cause == (
        f"Kion no longer has the new key {pending['api_key_id']} of this renewal, or refuses it."
    )
    assert error.fix == (
        "Someone deleted it in Kion; abandon this renewal (remove AWSPENDING from version "
        f"{token}) and start a new one."
    )
    assert renewal.current() == before
    assert renewal.current_works()


def test_finish_keeps_a_replaced_key_that_awscurrent_holds_again(
    renewal: KeyRenewalWorld, kion: KionStandIn
) -> None:
    """During the renewal an operator stores the renewal's new key with set-kion-key: the key
    finishSecret replaces is the one AWSCURRENT now holds, and stays."""
    token = renewal.start()
    renewal.run_steps(token, ("createSecret", "setSecret", "testSecret"))
    pending = renewal.version_fields(VersionStage="AWSPENDING")
    renewal.store_key(pending["api_key"], pending["api_key_id"])
    renewal.step("finishSecret", token)
    assert renewal.current()["api_key_id"] == pending["api_key_id"]
    assert renewal.record(pending["api_key_id"]) is not None
    assert renewal.current_works()


def test_create_keeps_the_renewals_own_key_that_awscurrent_holds(
    renewal: KeyRenewalWorld, kion: KionStandIn
) -> None:
    """After one renewal AWSCURRENT holds a key named by this deployment's renewals; the next
    renewal deletes only the spare ones."""
    renewal.renew()
    held = renewal.current()["api_key_id"]
    spare = kion.api_keys.issue(renewal.key_name("abandoned")).id
    token = renewal.start()
    kion.request_log.clear()
    renewal.step("createSecret", token)
    deleted = [r.path for r in kion.request_log if r.method == "DELETE"]
    assert deleted == [f"/api/v3/app-api-key/{spare}"]
    assert renewal.record(held) is not None


def test_keys_named_for_another_deployment_of_the_same_secret_name_are_left(
    renewal: KeyRenewalWorld, kion: KionStandIn
) -> None:
    other_arn = renewal.secret_id.replace(":123456789012:", ":222222222222:")
    other = kion.api_keys.issue(key_name(other_arn, renewal.secret_name(), "abandoned"))
    renewal.renew()
    assert renewal.record(other.id) is not None


def test_a_key_named_the_old_way_by_this_renewal_before_the_upgrade_is_still_recognised(
    renewal: KeyRenewalWorld, kion: KionStandIn
) -> None:
    """An upgrade between a createSecret whose reply was lost and its retry: the key it left
    carries the old name and this renewal's version; the retry deletes it before it creates."""
    token = renewal.start()
    name = f"{KEY_NAME_PREFIX}/{renewal.secret_name()}/{token[:VERSION_IN_NAME]}"
    orphan = kion.api_keys.issue(name)
    renewal.run_steps(token)
    assert renewal.record(orphan.id) is None
    assert [k.id for k in renewal.renewal_keys()] == [renewal.current()["api_key_id"]]


def test_a_key_named_the_old_way_with_a_version_this_secret_never_had_is_left(
    renewal: KeyRenewalWorld, kion: KionStandIn
) -> None:
    """Another deployment's key from before 0.2: same name, a version of its own secret."""
    version = str(uuid.uuid4())[:VERSION_IN_NAME]
    other = kion.api_keys.issue(f"{KEY_NAME_PREFIX}/{renewal.secret_name()}/{version}")
    renewal.renew()
    assert renewal.record(other.id) is not None


def test_create_deletes_the_key_a_finish_that_stopped_early_left_on_awsprevious(
    renewal: KeyRenewalWorld, kion: KionStandIn
) -> None:
    """finishSecret moved AWSCURRENT, then stopped before it deleted the replaced key: the next
    renewal deletes it (AWSPREVIOUS holds it, nothing else does)."""
    replaced = renewal.current()["api_key_id"]
    token = renewal.start()
    renewal.run_steps(token, ("createSecret", "setSecret", "testSecret"))
    current = next(v for v, s in renewal.stages().items() if "AWSCURRENT" in s)
    renewal.secretsmanager.update_secret_version_stage(
        SecretId=renewal.secret_id,
        VersionStage="AWSCURRENT",
        MoveToVersionId=token,
        RemoveFromVersionId=current,
    )
    assert renewal.record(replaced) is not None
    renewal.step("createSecret", renewal.start())
    assert renewal.record(replaced) is None


def test_a_secret_without_awsprevious_renews(renewal: KeyRenewalWorld) -> None:
    previous = next(v for v, s in renewal.stages().items() if "AWSPREVIOUS" in s)
    renewal.secretsmanager.update_secret_version_stage(
        SecretId=renewal.secret_id, VersionStage="AWSPREVIOUS", RemoveFromVersionId=previous
    )
    renewal.renew()
    assert renewal.current_works()


def test_a_pending_key_written_by_hand_without_an_id_is_finished_on_trust(
    renewal: KeyRenewalWorld, kion: KionStandIn
) -> None:
    """Kion cannot be asked about a key without an id: the check before finishing is skipped."""
    _, new_key = kion.create_api_key()
    token = str(uuid.uuid4())
    renewal.secretsmanager.put_secret_value(
        SecretId=renewal.secret_id,
        ClientRequestToken=token,
        SecretString=json.dumps(
            {"api_key": new_key, "installation_secret_id": renewal.smtp.secret_id}
        ),
        VersionStages=["AWSPENDING"],
    )
    renewal.run_steps(token, ("setSecret", "testSecret", "finishSecret"))
    assert "AWSCURRENT" in renewal.stages()[token]


def test_a_step_for_a_version_the_secret_does_not_have_is_refused(
    renewal: KeyRenewalWorld,
) -> None:
    with pytest.raises(RotationStepError) as failure:
        renewal.step("setSecret", str(uuid.uuid4()))
    assert isinstance(failure.value.error, RotationStateError)
