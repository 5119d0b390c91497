"""The daily watch: every check of an installation, its metrics and alerts, and the Kion API key
renewal it starts (and nothing else it changes)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.secretsmanager.models import secretsmanager_backends
from rotation_world import aws_refuses
from watch_world import LIMITS, WatchedWorld, key_secret_value

from ses_smtp_rotator.functions.quiet_period import GRACE
from ses_smtp_rotator.functions.services import aws_clients as aws
from ses_smtp_rotator.functions.watch.handler import lambda_handler
from ses_smtp_rotator.functions.watch.health import FAILING, HEALTHY, HealthLimits

KEYS = "/api/v3/app-api-key"


def emf_records(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if '"_aws"' in line]


def value(record: dict, name: str) -> float:
    found = record[name]
    return found[0] if isinstance(found, list) else found


def test_a_steady_installation_is_healthy_and_its_metrics_name_it(
    watched: WatchedWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    watched.kion.request_log.clear()
    report = watched.watch().run(now=watched.kion_now())
    [health] = report.checked
    # One read of Kion's settings serves the SMTP check and the Kion API key's lifespan.
    assert len(watched.kion.requests_to("GET")) == 1
    assert health.verdict == HEALTHY, health.checks
    assert set(health.checks) >= {
        "kion",
        "kion_endpoint",
        "access_key",
        "ses",
        "pending",
        "last_rotation",
        "kion_api_key",
    }
    assert health.kion_api_key_days_left is not None
    assert health.kion_api_key_days_left > 29
    assert not report.renewals_started
    assert watched.alerts() == []
    [record] = [r for r in emf_records(capsys.readouterr().out) if "installation" in r]
    assert record["installation"] == health.installation == "prod/ses-smtp-credential"
    assert value(record, "Healthy") == 1.0
    assert value(record, "KionApiKeyDaysLeft") > 29


def test_a_hand_edited_kion_username_is_alerted_with_cause_and_fix(watched: WatchedWorld) -> None:
    watched.kion.app_config["smtp_username"] = "AKIAHANDEDITED000000"
    report = watched.watch().run(now=watched.kion_now())
    [health] = report.checked
    assert health.verdict == FAILING
    assert health.failing == ["kion"]
    [alert] = watched.alerts()
    assert "AKIAHANDEDITED000000" in alert
    for secret in (watched.smtp.current()["password"], key_secret_value(watched)["api_key"]):
        assert secret not in alert
    assert "Fix: " in alert
    assert "rotate" in alert


def test_a_deactivated_key_fails_the_key_and_ses_checks(watched: WatchedWorld) -> None:
    username = watched.smtp.current()["username"]
    watched.smtp.iam.update_access_key(
        UserName=watched.smtp.installation.iam_user_name, AccessKeyId=username, Status="Inactive"
    )
    [health] = watched.watch().run(now=watched.kion_now()).checked
    assert "access_key" in health.failing
    assert "ses" in health.failing
    assert "inactive" in health.checks["access_key"].summary


def test_a_rotation_pending_longer_than_the_function_timeout_fails(watched: WatchedWorld) -> None:
    token = watched.smtp.start()
    watched.smtp.step("createSecret", token)
    watch = watched.watch()
    [health] = watch.run(now=watched.kion_now()).checked
    assert health.checks["pending"].ok is True  # just started: in progress, healthy
    backend = secretsmanager_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    idle = LIMITS.function_timeout + GRACE + timedelta(seconds=1)
    backend.secrets[watched.smtp.secret_id].versions[token]["createdate"] -= idle.total_seconds()
    [health] = watch.run(now=watched.kion_now()).checked
    assert health.failing == ["pending"]
    assert token in health.checks["pending"].summary
    assert "is stuck" in health.checks["pending"].summary


def test_a_rotation_older_than_the_schedule_allows_fails(watched: WatchedWorld) -> None:
    limits = HealthLimits(LIMITS.function_timeout, timedelta(days=35), LIMITS.kion_key_renew_after)
    [health] = watched.watch(limits).run(now=watched.kion_now() + timedelta(days=36)).checked
    assert "last_rotation" in health.failing
    assert health.days_since_rotation is not None
    assert health.days_since_rotation > 35


def test_the_watch_renews_a_kion_key_past_half_its_life_post_then_delete(
    watched: WatchedWorld,
) -> None:
    old = key_secret_value(watched)
    watched.age_kion_key(16)  # lifespan 30 days: 14 left
    watched.kion.request_log.clear()
    report = watched.watch().run(now=watched.kion_now())
    assert list(report.renewals_started) == [watched.renewal.secret_id]
    assert watched.hook.wait_idle(timeout=30)
    assert not watched.hook.failures
    new = key_secret_value(watched)
    assert new["api_key_id"] != old["api_key_id"]
    assert watched.renewal.works(new["api_key"])
    assert not watched.renewal.works(old["api_key"])
    calls = [(r.method, r.path) for r in watched.kion.request_log if "app-api-key" in r.path]
    assert calls.index(("POST", KEYS)) < calls.index(("DELETE", f"{KEYS}/{old['api_key_id']}"))
    watched.smtp.rotate()  # the next SMTP rotation runs on the new key
    assert watched.smtp.converged()


def test_an_expired_kion_key_is_alerted_with_set_kion_key_and_not_renewed(
    watched: WatchedWorld,
) -> None:
    watched.age_kion_key(31)
    report = watched.watch().run(now=watched.kion_now())
    [health] = report.checked
    assert "kion_api_key" in health.failing
    assert not report.renewals_started
    [alert] = watched.alerts()
    assert "ses-smtp-rotator set-kion-key" in alert


def test_asked_about_one_installation_the_watch_answers_and_starts_nothing(
    watched: WatchedWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    watched.age_kion_key(16)  # due, but a question starts no renewal
    versions_before = watched.renewal.stages()
    document = lambda_handler({"installation": watched.smtp.secret_id}, _Context())
    assert document["verdict"] == HEALTHY
    assert document["kion_api_key_renewal_due"] is True
    assert document["kion_username"] == watched.smtp.current()["username"]
    assert watched.renewal.stages() == versions_before
    output = capsys.readouterr().out + json.dumps(document)
    for secret in (watched.smtp.current()["password"], key_secret_value(watched)["api_key"]):
        assert secret not in output


class _Context:
    function_name = "watch"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:us-east-1:{DEFAULT_ACCOUNT_ID}:function:watch"
    aws_request_id = "request"


@pytest.mark.parametrize(
    "steps_run",
    [["createSecret"], []],
    ids=["after createSecret stored a key", "before any step gave the version a value"],
)
def test_a_kion_key_renewal_left_pending_is_flagged_and_not_started_again(
    watched: WatchedWorld, steps_run: list[str]
) -> None:
    """A renewal the watch started that never finishes is judged as a pending SMTP rotation is:
    in progress while young, stuck once older than the timeout; the watch starts no second
    renewal over it. A version that never got a value is aged by ListSecretVersionIds."""
    watched.age_kion_key(16)  # due
    token = watched.renewal.start()
    for step in steps_run:
        watched.renewal.step(step, token)
    watch = watched.watch()

    report = watch.run(now=watched.kion_now())
    [health] = report.checked
    assert not report.renewals_started
    assert health.checks["kion_api_key_renewal"].ok is True
    assert token in health.checks["kion_api_key_renewal"].summary

    backend = secretsmanager_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    idle = LIMITS.function_timeout + GRACE + timedelta(seconds=1)
    backend.secrets[watched.renewal.secret_id].versions[token]["createdate"] -= idle.total_seconds()
    report = watched.watch().run(now=watched.kion_now())
    [health] = report.checked
    assert not report.renewals_started
    assert health.failing == ["kion_api_key_renewal"]
    finding = health.checks["kion_api_key_renewal"]
    assert f"the renewal of the Kion API key to version {token} is stuck" in finding.summary
    assert f"ses-smtp-rotator abandon {health.secret_id}" in (finding.fix or "")
    [alert] = watched.alerts()
    assert "kion_api_key_renewal" in alert
    assert key_secret_value(watched)["api_key"] not in alert


def test_a_kion_key_renewal_aws_refuses_to_start_names_the_call_to_allow(
    watched: WatchedWorld,
) -> None:
    watched.age_kion_key(16)  # due
    with aws_refuses(aws.client("secretsmanager"), "RotateSecret"):
        report = watched.watch().run(now=watched.kion_now())

    [health] = report.checked
    finding = health.checks["kion_api_key_renewal"]
    assert finding.ok is False
    assert finding.summary == (
        f"AWS refused secretsmanager:RotateSecret on {health.kion_api_key_secret_id} "
        "(AccessDenied)."
    )
    assert not report.renewals_started


def test_a_kion_key_renewal_the_watch_may_not_age_is_reported_as_unknown(
    watched: WatchedWorld,
) -> None:
    """Without ListSecretVersionIds the age of a renewal that never got a value is unknown: the
    check says which call AWS refused and what to do, fails nothing and starts nothing."""
    watched.age_kion_key(16)  # due
    token = watched.renewal.start()
    with aws_refuses(aws.client("secretsmanager"), "ListSecretVersionIds"):
        report = watched.watch().run(now=watched.kion_now())

    [health] = report.checked
    finding = health.checks["kion_api_key_renewal"]
    assert finding.ok is None
    assert "secretsmanager:ListSecretVersionIds" in finding.summary
    assert finding.fix
    assert "kion_api_key_renewal" not in health.failing
    assert not report.renewals_started
    assert "AWSPENDING" in watched.renewal.stages()[token]
