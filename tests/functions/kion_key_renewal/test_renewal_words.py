"""What the renewal tells an operator, in its exact words: which key route Kion refused, and a
refused new key at the limit or for another reason."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from types import SimpleNamespace

import pytest
import urllib3.util.retry
from kion_key_world import KeyRenewalWorld
from rotation_world import aws_refuses

from ses_smtp_rotator.functions.errors import (
    AwsPermissionError,
    KionApiKeyError,
    KionAuthError,
    KionConnectionError,
    KionPermissionError,
    KionRequestError,
    RotationStateError,
)
from ses_smtp_rotator.functions.kion_key_renewal.key_secret import ApiKeySecret, StoredApiKey
from ses_smtp_rotator.functions.kion_key_renewal.steps import KionKeyLimitError
from ses_smtp_rotator.functions.services import aws_clients as aws
from ses_smtp_rotator.local.kion_server import KionStandIn
from ses_smtp_rotator.local.rotation_service import RotationStepError

REFUSED = (
    "Kion at {url} refused to {action} for the API key's user (403), or App API key creation is "
    "switched off."
)
KEYS = "/api/v3/app-api-key"
PERMISSION_FIX = (
    "Give the key's user Kion's 'Manage App API Keys' permission and make sure "
    "app_api_key_creation_enabled is on."
)


def failed_step(renewal: KeyRenewalWorld, token: str, step: str) -> Exception:
    with pytest.raises(RotationStepError) as failure:
        renewal.step(step, token)
    return failure.value.error


def logged(function_logs: io.StringIO, message: str) -> list[dict]:
    """The function's log records with this message."""
    lines = [json.loads(line) for line in function_logs.getvalue().splitlines() if line]
    return [line for line in lines if line.get("message") == message]


@pytest.mark.parametrize(
    ("step", "method", "action"),
    [
        ("createSecret", "GET", "list App API keys (GET)"),
        ("createSecret", "POST", "create App API keys (POST)"),
        ("finishSecret", "GET", "read App API keys (GET)"),
        ("finishSecret", "DELETE", "delete App API keys (DELETE)"),
    ],
)
def test_a_refused_key_route_is_named_with_the_permission_it_needs(
    renewal: KeyRenewalWorld, kion: KionStandIn, step: str, method: str, action: str
) -> None:
    token = renewal.start()
    if step == "finishSecret":
        renewal.run_steps(token, ("createSecret", "setSecret", "testSecret"))
    kion.fail_requests(403, methods=[method])
    error = failed_step(renewal, token, step)
    assert isinstance(error, KionPermissionError)
    assert error.cause == REFUSED.format(url=kion.url, action=action)
    assert error.fix == PERMISSION_FIX


def test_at_the_limit_the_error_counts_and_names_the_keys_of_the_keys_user_alone(
    renewal: KeyRenewalWorld, kion: KionStandIn
) -> None:
    kion.app_config["app_api_key_limit"] = 2
    held = renewal.current()["api_key_id"]
    kion.api_keys.issue("another user's key", user_id=2)  # listed before the script
    script = kion.api_keys.issue("a colleague's script")
    error = failed_step(renewal, renewal.start(), "createSecret")
    assert isinstance(error, KionKeyLimitError)
    assert error.cause == (
        "Kion refused a new App API key: the key's user holds 2 keys, Kion's app_api_key_limit "
        "is 2, and none of them is a spare key of this installation's renewals (keys: "
        f"{held} (hand-made), {script.id} (a colleague's script))."
    )
    assert error.fix == (
        "Delete a key of that user that nothing uses in Kion, or raise app_api_key_limit, "
        "then start the renewal again."
    )


def test_at_the_limit_a_stored_key_without_an_id_counts_every_key_kion_lists(
    make_renewal: Callable[..., KeyRenewalWorld], kion: KionStandIn
) -> None:
    """Without the stored key's id its user is unknown: every listed key counts."""
    renewal = make_renewal(key_id_known=False)
    kion.app_config["app_api_key_limit"] = 2
    script = kion.api_keys.issue("a colleague's script")
    error = failed_step(renewal, renewal.start(), "createSecret")
    assert isinstance(error, KionKeyLimitError)
    assert error.cause.startswith("Kion refused a new App API key: the key's user holds 2 keys")
    assert f"{script.id} (a colleague's script))." in error.cause


@pytest.mark.parametrize("limit", [5, None], ids=["under-the-limit", "no-limit-set"])
def test_a_new_key_refused_for_another_reason_passes_kions_answer_on(
    renewal: KeyRenewalWorld, kion: KionStandIn, limit: int | None
) -> None:
    if limit is None:
        del kion.app_config["app_api_key_limit"]  # Kion shows no limit
    else:
        kion.app_config["app_api_key_limit"] = limit
    kion.fail_requests(400, methods=["POST"], message="name is too long")
    error = failed_step(renewal, renewal.start(), "createSecret")
    assert type(error) is KionRequestError
    assert "answered POST /api/v3/app-api-key with HTTP 400" in error.cause
    assert "name is too long" in error.cause


def test_a_failed_delete_names_the_request_kion_refused(
    renewal: KeyRenewalWorld, kion: KionStandIn
) -> None:
    replaced = renewal.current()["api_key_id"]
    token = renewal.start()
    renewal.run_steps(token, ("createSecret", "setSecret", "testSecret"))
    kion.fail_requests(500, count=None, methods=["DELETE"])
    error = failed_step(renewal, token, "finishSecret")
    assert f"answered DELETE /api/v3/app-api-key/{replaced} with HTTP 500" in error.cause


def test_a_replaced_key_already_gone_from_kion_is_not_reported_deleted(
    renewal: KeyRenewalWorld, kion: KionStandIn, function_logs: io.StringIO
) -> None:
    replaced = renewal.current()["api_key_id"]
    token = renewal.start()
    renewal.run_steps(token, ("createSecret", "setSecret", "testSecret"))
    kion.revoke_api_key(replaced)  # someone deleted it in Kion meanwhile
    renewal.step("finishSecret", token)
    assert "Deleted the replaced Kion API key" not in function_logs.getvalue()
    assert renewal.current_works()


def test_set_secret_says_there_is_nothing_to_set(
    renewal: KeyRenewalWorld, function_logs: io.StringIO
) -> None:
    renewal.renew()
    assert logged(function_logs, "Nothing to set: Kion made the new key live when it created it")


def test_a_renewal_logs_each_key_it_made_moved_and_deleted_and_counts_its_success(
    renewal: KeyRenewalWorld,
    kion: KionStandIn,
    function_logs: io.StringIO,
    capsys: pytest.CaptureFixture[str],
) -> None:
    replaced = renewal.current()["api_key_id"]
    spare = kion.api_keys.issue(renewal.key_name("abandoned")).id
    token = renewal.renew()
    new = renewal.current()["api_key_id"]
    [created] = logged(function_logs, "Created a Kion API key")
    assert (created["api_key_id"], created["key_name"]) == (new, renewal.key_name(token))
    [stored] = logged(function_logs, "Stored the new Kion API key as AWSPENDING")
    assert stored["api_key_id"] == new
    [spare_deleted] = logged(function_logs, "Deleted a spare Kion API key")
    assert spare_deleted["api_key_id"] == spare
    [accepted] = logged(function_logs, "Kion accepts the new key")
    assert accepted["api_key_id"] == new
    [moved] = logged(function_logs, "AWSCURRENT moved to the new Kion API key")
    assert moved["api_key_id"] == new
    [deleted] = logged(function_logs, "Deleted the replaced Kion API key")
    assert deleted["api_key_id"] == replaced
    renewed = [line for line in capsys.readouterr().out.splitlines() if "KionApiKeyRenewed" in line]
    [record] = [json.loads(line) for line in renewed if '"_aws"' in line]
    [directive] = record["_aws"]["CloudWatchMetrics"]
    assert directive["Metrics"] == [{"Name": "KionApiKeyRenewed", "Unit": "Count"}]
    assert record["KionApiKeyRenewed"] in (1, 1.0, [1.0])


def test_a_create_secret_run_again_says_the_pending_version_exists(
    renewal: KeyRenewalWorld, function_logs: io.StringIO
) -> None:
    token = renewal.start()
    renewal.step("createSecret", token)
    renewal.step("createSecret", token)
    assert len(logged(function_logs, "The pending version already exists; nothing to create")) == 1


def test_an_expired_key_names_kion_and_the_secret_that_holds_it(
    renewal: KeyRenewalWorld, kion: KionStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = kion.clock() + 31 * 86_400  # past the default lifespan of 30 days
    monkeypatch.setattr(kion, "clock", lambda: later)
    error = failed_step(renewal, renewal.start(), "createSecret")
    assert error.cause == (
        f"Kion at {kion.url} refuses the App API key stored in {renewal.secret_id} (401): it "
        "expired or was deleted, so it can no longer be renewed, and rotations of the SMTP "
        "credential fail until it is replaced."
    )
    assert error.fix == (
        "In Kion, create an App API key for the rotator's user, then store it with: "
        "ses-smtp-rotator set-kion-key <installation secret> (it checks the key first)."
    )


def test_a_new_key_kion_refuses_at_test_secret_names_the_secret_to_fix(
    renewal: KeyRenewalWorld, kion: KionStandIn
) -> None:
    token = renewal.start()
    renewal.step("createSecret", token)
    kion.revoke_api_key(renewal.version_fields(VersionStage="AWSPENDING")["api_key_id"])
    error = failed_step(renewal, token, "testSecret")
    assert isinstance(error, KionAuthError)
    assert error.fix.startswith(
        f"Put a valid, unexpired App API key into {renewal.secret_id}; keys expire"
    )


def test_a_key_stored_without_its_installation_says_why_the_renewal_stops(
    renewal: KeyRenewalWorld, kion: KionStandIn
) -> None:
    renewal.secretsmanager.put_secret_value(SecretId=renewal.secret_id, SecretString=kion.api_key)
    error = failed_step(renewal, renewal.start(), "createSecret")
    assert error.cause == (
        f"The Kion API key secret {renewal.secret_name()} does not say which installation its "
        "key belongs to (no installation_secret_id), so the renewal cannot tell which Kion to "
        "ask."
    )


def test_the_configuration_check_before_any_key_says_so(
    renewal: KeyRenewalWorld, function_logs: io.StringIO
) -> None:
    renewal.secretsmanager.put_secret_value(
        SecretId=renewal.secret_id, SecretString='{"api_key": ""}'
    )
    renewal.service.check_configuration(renewal.secret_id)
    assert logged(function_logs, "Configuration check on a secret with no key yet")


def test_the_renewal_retries_kion_as_kion_retries_and_its_backoff_say(
    renewal: KeyRenewalWorld, kion: KionStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(
        urllib3.util.retry, "time", SimpleNamespace(sleep=pauses.append, time=time.time)
    )
    monkeypatch.setenv("KION_RETRIES", "2")
    monkeypatch.setenv("KION_RETRY_BACKOFF_SECONDS", "0.25")
    kion.fail_requests(503, count=None, methods=["GET"])
    error = failed_step(renewal, renewal.start(), "createSecret")
    assert isinstance(error, KionRequestError)
    assert [request.status for request in kion.requests_to("GET", KEYS)] == [503, 503, 503]
    assert pauses == [0.5]  # none before the first retry, then twice the factor


def test_the_renewal_waits_for_kion_as_long_as_kion_timeout_seconds_says(
    renewal: KeyRenewalWorld, kion: KionStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KION_TIMEOUT_SECONDS", "0.2")
    monkeypatch.setenv("KION_RETRIES", "0")
    kion.delay = 1.0
    error = failed_step(renewal, renewal.start(), "createSecret")
    assert isinstance(error, KionConnectionError)
    assert "0.2 s to answer (KION_TIMEOUT_SECONDS)" in error.cause


def test_create_secret_hands_the_rotation_token_back_with_the_new_key(
    renewal: KeyRenewalWorld,
) -> None:
    """Secrets Manager checks the event's RotationToken on PutSecretValue."""
    sent: list[str | None] = []
    events = aws.client("secretsmanager").meta.events

    def record(params: dict, **_: object) -> None:
        sent.append(params.get("RotationToken"))

    events.register("provide-client-params.secretsmanager.PutSecretValue", record, "token")
    try:
        renewal.step("createSecret", renewal.start())
    finally:
        events.unregister("provide-client-params.secretsmanager.PutSecretValue", unique_id="token")
    assert sent == [renewal.service.last_rotation_token]
    assert sent[0]


def test_a_renewal_of_a_secret_that_holds_no_key_yet_names_the_command_that_stores_one(
    renewal: KeyRenewalWorld,
) -> None:
    renewal.secretsmanager.put_secret_value(
        SecretId=renewal.secret_id, SecretString='{"api_key": ""}'
    )
    error = failed_step(renewal, renewal.start(), "createSecret")
    assert isinstance(error, KionApiKeyError)
    assert error.cause == f"The Kion API key secret {renewal.secret_id} holds no key yet."
    assert error.fix == (
        "Store a Kion App API key in it with: ses-smtp-rotator set-kion-key <installation secret>."
    )


@pytest.mark.parametrize("operation", ["DescribeSecret", "GetSecretValue"])
def test_a_read_of_the_key_secret_aws_refuses_is_named_with_the_call_to_allow(
    renewal: KeyRenewalWorld, operation: str
) -> None:
    token = renewal.start()
    with aws_refuses(aws.client("secretsmanager"), operation):
        error = failed_step(renewal, token, "createSecret")
    assert isinstance(error, AwsPermissionError)
    assert error.cause == (
        f"AWS refused secretsmanager:{operation} on {renewal.secret_id} (AccessDenied)."
    )


def test_a_key_secret_that_does_not_exist_is_named_with_the_fix(aws: None) -> None:
    with pytest.raises(RotationStateError) as raised:
        ApiKeySecret("kion/no-such-key").describe()
    assert raised.value.cause == "Secret kion/no-such-key does not exist."
    assert raised.value.fix == "Invoke the renewal with the id of an existing Kion API key secret."


def test_a_key_secret_holding_binary_data_holds_no_key(renewal: KeyRenewalWorld) -> None:
    renewal.secretsmanager.put_secret_value(SecretId=renewal.secret_id, SecretBinary=b"\x00")
    error = failed_step(renewal, renewal.start(), "createSecret")
    assert isinstance(error, KionApiKeyError)
    assert error.cause == f"The Kion API key secret {renewal.secret_id} holds no key yet."


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        ("{not json", "The Kion API key secret kion/key holds JSON that cannot be read."),
        ('{"api_key": 5}', "'api_key' in kion/key is not a string."),
    ],
)
def test_a_stored_value_that_is_no_key_names_the_secret(text: str, cause: str) -> None:
    with pytest.raises(KionApiKeyError) as raised:
        StoredApiKey.parse("kion/key", text)
    assert raised.value.cause == cause
    assert raised.value.fix == (
        'Put the Kion App API key into kion/key as plain text or as {"api_key": "<key>"}.'
    )


@pytest.mark.parametrize("key_id", ['"7"', "true", "7.0"])
def test_a_stored_key_id_that_is_not_a_whole_number_is_unknown(key_id: str) -> None:
    stored = StoredApiKey.parse("kion/key", f'{{"api_key": "k", "api_key_id": {key_id}}}')
    assert (stored.api_key, stored.api_key_id) == ("k", None)
    assert StoredApiKey.parse("kion/key", '{"api_key": "k", "api_key_id": 7}').api_key_id == 7


def test_a_stored_installation_that_is_not_a_secret_id_is_unknown() -> None:
    stored = StoredApiKey.parse("kion/key", '{"api_key": "k", "installation_secret_id": 5}')
    assert stored.installation_secret_id is None


def test_a_key_secret_holding_unreadable_json_names_the_secret(renewal: KeyRenewalWorld) -> None:
    renewal.secretsmanager.put_secret_value(SecretId=renewal.secret_id, SecretString="{not json")
    error = failed_step(renewal, renewal.start(), "createSecret")
    assert (
        error.cause
        == f"The Kion API key secret {renewal.secret_id} holds JSON that cannot be read."
    )


def test_a_failed_renewal_step_is_counted_as_kion_api_key_renewal_step_failed(
    renewal: KeyRenewalWorld, kion: KionStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    kion.fail_requests(403, methods=["GET"])
    failed_step(renewal, renewal.start(), "createSecret")
    records = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line
    ]
    names = {
        m["Name"] for r in records for d in r["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]
    }
    assert "KionApiKeyRenewalStepFailed" in names


def test_a_later_step_of_a_version_never_stored_names_the_renewal_and_its_key_secret(
    renewal: KeyRenewalWorld,
) -> None:
    token = "0" * 8 + "-0000-4000-8000-" + "0" * 12  # no createSecret ever stored it
    error = failed_step(renewal, token, "setSecret")
    assert isinstance(error, RotationStateError)
    assert error.cause == (
        f"Version {token} of the Kion API key secret has no value: createSecret has not finished."
    )
    assert error.fix == (
        "Look at the createSecret error that came before; Secrets Manager retries the renewal, "
        "or start a new one."
    )


def test_finish_secret_again_takes_awspending_off_the_version_already_awscurrent(
    renewal: KeyRenewalWorld,
) -> None:
    token = renewal.renew()
    # Secrets Manager may leave AWSPENDING on the version it made AWSCURRENT.
    renewal.secretsmanager.update_secret_version_stage(
        SecretId=renewal.secret_id, VersionStage="AWSPENDING", MoveToVersionId=token
    )
    renewal.step("finishSecret", token)
    assert renewal.stages()[token] == ["AWSCURRENT"]
    assert renewal.current_works()
