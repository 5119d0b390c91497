"""People are told: one SNS notice per successful rotation or rollback, and an EventBridge event
per outcome, on moto's SNS, EventBridge and SQS (a queue subscribed, as a team's tooling would)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from ses_smtp_rotator.functions.smtp_rotation import handler
from ses_smtp_rotator.functions.smtp_rotation.notices import EVENT_DETAIL_TYPE, EVENT_SOURCE
from ses_smtp_rotator.local.rotation_service import LambdaContextStub, RotationStepError


@pytest.fixture
def inbox(aws, monkeypatch) -> dict[str, Any]:
    """A topic for the notices and a rule on the default bus for the product's events, each
    delivering into an SQS queue the test reads."""
    sqs, sns, events = (boto3.client(name) for name in ("sqs", "sns", "events"))
    queues = {}
    for name in ("notices", "events"):
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        queues[name] = (url, arn)
    topic_arn = sns.create_topic(Name="ses-smtp-rotator-notices")["TopicArn"]
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queues["notices"][1],
        Attributes={"RawMessageDelivery": "false"},
    )
    events.put_rule(Name="rotations", EventPattern=json.dumps({"source": [EVENT_SOURCE]}))
    events.put_targets(Rule="rotations", Targets=[{"Id": "queue", "Arn": queues["events"][1]}])
    monkeypatch.setenv("NOTICE_TOPIC_ARN", topic_arn)
    monkeypatch.setenv("EVENT_BUS_NAME", "default")
    return {"sqs": sqs, "queues": queues}


def received(inbox: dict[str, Any], name: str) -> list[dict[str, Any]]:
    url = inbox["queues"][name][0]
    messages = (
        inbox["sqs"].receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    )
    return [json.loads(message["Body"]) for message in messages]


def test_a_rotation_sends_one_notice_naming_the_keys_the_deletion_date_and_the_way_back(
    world, inbox
):
    old_key = world.kion_credential()[0]

    world.rotate()

    new_key = world.kion_credential()[0]
    [notice] = received(inbox, "notices")
    text = notice["Message"]
    assert "kion" in notice["Subject"]
    assert f"now use access key {new_key}" in text
    assert f"Access key {old_key} was deactivated; it will be deleted after" in text
    deletion = datetime.now(UTC) + timedelta(days=7)
    assert f"{deletion:%Y-%m-%d}" in text
    assert "ses-smtp-rotator rollback kion/ses-smtp-credential" in text
    assert world.current()["password"] not in text


def test_a_rotation_puts_one_event_with_the_installation_outcome_and_keys(world, inbox):
    old_key = world.kion_credential()[0]

    world.rotate()

    [event] = received(inbox, "events")
    assert event["source"] == EVENT_SOURCE
    assert event["detail-type"] == EVENT_DETAIL_TYPE
    detail = event["detail"]
    assert detail["outcome"] == "succeeded"
    assert detail["installation"] == "kion/ses-smtp-credential"
    assert detail["keys"]["current"] == world.kion_credential()[0]
    assert detail["keys"]["deactivated"] == old_key
    assert detail["keys"]["deletion_after"]


def test_a_failed_step_puts_a_failed_event_with_the_step_and_error(world, inbox):
    world.kion.fail_requests(403, count=None, methods=["PATCH"])

    with pytest.raises(RotationStepError):
        world.rotate()

    outcomes = [
        (e["detail"]["outcome"], e["detail"].get("step")) for e in received(inbox, "events")
    ]
    assert ("failed", "setSecret") in outcomes
    assert received(inbox, "notices") == []


def test_a_rollback_is_announced_too(world, inbox):
    old_key = world.kion_credential()[0]
    world.rotate()
    for name in ("notices", "events"):
        received(inbox, name)  # the rotation's, read and gone

    handler.lambda_handler({"Action": "rollback", "SecretId": world.secret_id}, LambdaContextStub())

    [notice] = received(inbox, "notices")
    assert "rolled back" in notice["Message"]
    assert f"now use access key {old_key}" in notice["Message"]
    [event] = received(inbox, "events")
    assert event["detail"]["outcome"] == "rolled-back"


def test_a_notice_that_cannot_be_published_does_not_fail_the_rotation(world, monkeypatch, caplog):
    monkeypatch.setenv("NOTICE_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:no-such-topic")
    old_key = world.kion_credential()[0]

    world.rotate()

    assert world.kion_credential()[0] != old_key
    assert world.current()["username"] == world.kion_credential()[0]
    assert "Could not publish the notice" in caplog.text


def test_the_notice_of_an_adoption_names_the_adopted_key_and_its_last_use(make_world, inbox):
    """The key Kion held before the first rotation may serve other senders: the notice and the
    event say it was adopted and carry IAM's last-used record read before it was deactivated."""
    world = make_world(adopt=True)
    hand_made = world.kion_credential()[0]

    world.rotate()

    [notice] = received(inbox, "notices")
    text = notice["Message"]
    assert f"Access key {hand_made} was deactivated" in text
    assert "the key Kion held before this product's first rotation" in text
    assert "IAM's last use of it: " in text
    assert "(read before deactivation)" in text
    [event] = received(inbox, "events")
    keys = event["detail"]["keys"]
    assert keys["deactivated"] == hand_made
    assert keys["deactivated_origin"] == "adopted"
    assert keys["deactivated_last_use"].endswith("(read before deactivation)")


def test_the_notice_of_a_key_this_product_made_says_nothing_of_adoption(world, inbox):
    world.rotate()
    received(inbox, "notices")
    received(inbox, "events")

    world.backdate_retirements()
    world.rotate()

    notices = received(inbox, "notices")
    assert notices, "the second rotation sent no notice"
    assert "first rotation" not in notices[-1]["Message"]
    assert "deactivated_origin" not in received(inbox, "events")[-1]["detail"]["keys"]


def test_each_outcome_is_logged_with_the_bus_its_event_went_to(world, inbox, function_logs):
    world.rotate()

    lines = [json.loads(line) for line in function_logs.getvalue().splitlines() if line]
    [logged] = [line for line in lines if line.get("message") == "Outcome: succeeded"]
    assert logged["event_bus"] == "default"
    assert logged["outcome_event"]["outcome"] == "succeeded"
    assert logged["outcome_event"]["keys"]["current"] == world.kion_credential()[0]
    assert world.current()["password"] not in json.dumps(logged)
