"""The watch's fan-out: the scheduled run only lists and dispatches, one SQS message per
installation; each message is handled on its own budget, and a check that cannot finish is
reported as unchecked with its cause."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.secretsmanager.models import secretsmanager_backends
from watch_world import DEPLOYMENT, LIMITS, PREFIX, WatchedWorld, key_secret_value

from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.telemetry import SERVICE
from ses_smtp_rotator.functions.watch import handler
from ses_smtp_rotator.functions.watch.daily_watch import DEPLOYMENT_TAG, Watch, WatchConfig
from ses_smtp_rotator.functions.watch.health import HEALTHY, UNCHECKED, HealthCheck

KEY_PREFIX = "keys/"
WATCH_DELIVERIES = 2  # the stack's queue (cdk.watch.WATCH_DELIVERIES; no CDK on the Lambda runtime)


class _Context:
    function_name = "watch"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:us-east-1:{DEFAULT_ACCOUNT_ID}:function:watch"
    aws_request_id = "request"

    def __init__(self, remaining_ms: int = 900_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def queue_url(watched: WatchedWorld) -> str:
    return boto3.client("sqs").create_queue(QueueName="watch")["QueueUrl"]


@pytest.fixture
def deployed_watch(
    watched: WatchedWorld, queue_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The handler configured as the stack configures it, with the watch's queue."""
    for name, value in {
        "DEPLOYMENT_NAME": DEPLOYMENT,
        "INSTALLATION_SECRET_PREFIX": PREFIX,
        "ROTATION_FUNCTION_TIMEOUT_SECONDS": "300",
        "ALERT_TOPIC_ARN": watched.topic_arn,
        "WATCH_QUEUE_URL": queue_url,
    }.items():
        monkeypatch.setenv(name, value)
    handler._config.cache_clear()
    yield queue_url
    handler._config.cache_clear()


def received(queue_url: str) -> list[dict[str, Any]]:
    """The queue's messages as Lambda's SQS event source hands them to the function."""
    answer = boto3.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
    return [
        {"messageId": message["MessageId"], "body": message["Body"], "eventSource": "aws:sqs"}
        for message in answer.get("Messages", [])
    ]


def test_the_scheduled_run_only_dispatches_one_message_per_installation(
    watched: WatchedWorld, deployed_watch: str
) -> None:
    watched.kion.request_log.clear()
    answer = handler.lambda_handler({"source": "aws.scheduler"}, _Context())
    assert answer == {"dispatched": 1}
    [message] = received(deployed_watch)
    assert json.loads(message["body"])["installation"] == watched.smtp.secret_id
    assert watched.kion.request_log == []  # nothing checked yet
    assert watched.alerts() == []


def test_a_dispatched_installation_is_checked_and_acted_on_from_its_message(
    watched: WatchedWorld, deployed_watch: str
) -> None:
    old_key_id = key_secret_value(watched)["api_key_id"]
    watched.age_kion_key(16)  # lifespan 30 days: renewal due
    watched.kion.app_config["smtp_username"] = "AKIAHANDEDITED000000"  # failing
    handler.lambda_handler({"source": "aws.scheduler"}, _Context())
    answer = handler.lambda_handler({"Records": received(deployed_watch)}, _Context())
    assert answer == {"batchItemFailures": []}
    assert watched.hook.wait_idle(timeout=30)
    assert not watched.hook.failures
    assert key_secret_value(watched)["api_key_id"] != old_key_id  # the renewal ran
    [alert] = watched.alerts()
    assert "AKIAHANDEDITED000000" in alert


def test_a_message_that_names_no_installation_goes_back_to_the_queue(
    watched: WatchedWorld, deployed_watch: str
) -> None:
    record = {"messageId": "m-1", "body": "not json"}
    answer = handler.lambda_handler({"Records": [record]}, _Context())
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}


def test_a_check_that_cannot_finish_in_its_budget_is_unchecked_with_its_cause(
    watched: WatchedWorld,
) -> None:
    config = WatchConfig(DEPLOYMENT, PREFIX, LIMITS, alert_topic_arn=watched.topic_arn)
    watch = Watch(config, watched.watch().health_check)
    watched.kion.delay = 600.0  # Kion takes the connection and never answers
    try:
        health = watch.watch_one(
            watched.smtp.secret_id, budget=timedelta(seconds=0.5), now=watched.kion_now()
        )
    finally:
        watched.kion.clear_faults()
    assert health.verdict == UNCHECKED
    assert health.unchecked == ["watch"]
    assert "did not finish within 0.5 s" in health.checks["watch"].summary
    assert "Kion or SES did not answer in time" in health.checks["watch"].summary
    assert health.checks["watch"].fix is not None
    assert watched.alerts() == []


def test_with_time_to_spare_the_same_installation_is_healthy(watched: WatchedWorld) -> None:
    watch = watched.watch()
    health = watch.watch_one(
        watched.smtp.secret_id, budget=timedelta(seconds=120), now=watched.kion_now()
    )
    assert health.verdict == HEALTHY, health.checks


def test_installations_whose_kion_key_was_renewed_longest_ago_are_dispatched_first(
    aws: None,
) -> None:
    secretsmanager = boto3.client("secretsmanager")
    deployment_tag = [{"Key": DEPLOYMENT_TAG, "Value": DEPLOYMENT}]
    for installation in ("fresh", "old", "imported"):
        secretsmanager.create_secret(
            Name=f"{PREFIX}{installation}", SecretString="{}", Tags=deployment_tag
        )
    for installation, days_ago in (("fresh", 1), ("old", 6)):
        secretsmanager.create_secret(
            Name=f"{KEY_PREFIX}{installation}", SecretString="{}", Tags=deployment_tag
        )
        backend = secretsmanager_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
        backend.secrets[f"{KEY_PREFIX}{installation}"].created_date -= days_ago * 86400
    queue_url = boto3.client("sqs").create_queue(QueueName="watch")["QueueUrl"]
    config = WatchConfig(
        DEPLOYMENT, PREFIX, LIMITS, queue_url=queue_url, key_secret_prefix=KEY_PREFIX
    )
    watch = Watch(config, HealthCheck(LIMITS, RotationConfig()))
    assert watch.dispatch() == 3
    sent = [json.loads(message["body"])["installation"] for message in received(queue_url)]
    names = [secretsmanager.describe_secret(SecretId=arn)["Name"] for arn in sent]
    # No key secret of its own: its key's age is unknown, as a renewal treats it (due).
    assert names == [f"{PREFIX}imported", f"{PREFIX}old", f"{PREFIX}fresh"]


def test_an_installation_the_watch_cannot_handle_ends_in_the_dead_letter_queue_named(
    watched: WatchedWorld, deployed_watch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What Lambda's SQS event source does with a message whose handling fails: deliver it again
    after its visibility timeout, and after the queue's last delivery move it to the DLQ (whose
    alarm InstallationsUnwatched names it); the function's log has the cause."""
    sqs = boto3.client("sqs")
    dead_letters = sqs.create_queue(QueueName="unwatched")["QueueUrl"]
    dead_letters_arn = sqs.get_queue_attributes(QueueUrl=dead_letters, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sqs.set_queue_attributes(
        QueueUrl=deployed_watch,
        Attributes={
            "VisibilityTimeout": "0",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dead_letters_arn, "maxReceiveCount": str(WATCH_DELIVERIES)}
            ),
        },
    )
    missing_topic = watched.topic_arn + "-deleted"  # the alert cannot be published
    monkeypatch.setenv("ALERT_TOPIC_ARN", missing_topic)
    handler._config.cache_clear()
    watched.kion.app_config["smtp_username"] = "AKIAHANDEDITED000000"  # failing: it alerts
    handler.lambda_handler({"source": "aws.scheduler"}, _Context())
    for _ in range(WATCH_DELIVERIES):
        [record] = received(deployed_watch)
        answer = handler.lambda_handler({"Records": [record]}, _Context())
        assert answer == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert received(deployed_watch) == []  # not dropped, and not delivered a third time:
    [kept] = received(dead_letters)
    assert json.loads(kept["body"])["installation"] == watched.smtp.secret_id


def test_a_message_not_handled_is_logged_with_its_installation_and_cause(
    watched: WatchedWorld, deployed_watch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERT_TOPIC_ARN", watched.topic_arn + "-deleted")
    handler._config.cache_clear()
    watched.kion.app_config["smtp_username"] = "AKIAHANDEDITED000000"  # failing: it alerts
    handler.lambda_handler({"source": "aws.scheduler"}, _Context())
    [record] = received(deployed_watch)
    logged: list[logging.LogRecord] = []
    collector = logging.Handler()
    collector.emit = logged.append  # type: ignore[method-assign]
    function_logger = logging.getLogger(SERVICE)
    function_logger.addHandler(collector)
    try:
        handler.lambda_handler({"Records": [record]}, _Context())
    finally:
        function_logger.removeHandler(collector)
    [failure] = [entry for entry in logged if entry.getMessage() == "Watch message not handled"]
    assert failure.installation == watched.smtp.secret_id  # type: ignore[attr-defined]
    assert failure.exc_info is not None
    assert "NotFound" in str(failure.exc_info[1])  # the topic the alert could not reach
