"""People are told: the rotation function publishes its notices to the notify topic (the alert
topic unless ``notifyTopicArn`` names another) and its events to the default bus, with exactly
those two permissions and the product's own event source."""

from __future__ import annotations

from typing import Any

import pytest
from synthesized_app import (
    EXISTING_TOPIC_ARN,
    Synthesized,
    as_list,
    only,
    statements_of,
    synthesize,
)

from ses_smtp_rotator.functions.smtp_rotation.notices import EVENT_SOURCE

NOTIFY_TOPIC_ARN = "arn:aws:sns:us-east-1:111122223333:kion-mail-changes"


@pytest.fixture(scope="module")
def notify_app() -> Synthesized:
    return synthesize({"notifyTopicArn": NOTIFY_TOPIC_ARN})


def rotation_environment(app: Synthesized) -> dict[str, Any]:
    function_id = app.logical_id(app.stack.rotation.function)
    function = app.template_json["Resources"][function_id]
    return function["Properties"]["Environment"]["Variables"]


def grants(app: Synthesized, action: str) -> list[dict[str, Any]]:
    role_id = app.logical_id(app.stack.rotation.role)
    return [s for s in statements_of(app, role_id) if action in as_list(s["Action"])]


def test_without_a_notify_topic_the_notices_go_to_the_alert_topic(default_app: Synthesized):
    topic_id = default_app.logical_id(default_app.stack.rotation.topic)
    assert rotation_environment(default_app)["NOTICE_TOPIC_ARN"] == {"Ref": topic_id}
    publish = only(grants(default_app, "sns:Publish"), "sns:Publish grant")
    assert publish["Resource"] == {"Ref": topic_id}


def test_a_notify_topic_gets_the_notices_and_only_it_may_be_published_to(
    notify_app: Synthesized,
):
    assert rotation_environment(notify_app)["NOTICE_TOPIC_ARN"] == NOTIFY_TOPIC_ARN
    publish = only(grants(notify_app, "sns:Publish"), "sns:Publish grant")
    assert publish["Resource"] == NOTIFY_TOPIC_ARN


def test_the_existing_alert_topic_keeps_alerts_when_notices_go_elsewhere(fleet_app: Synthesized):
    assert rotation_environment(fleet_app)["NOTICE_TOPIC_ARN"] == EXISTING_TOPIC_ARN


def test_events_go_to_the_default_bus_with_the_products_source_only(default_app: Synthesized):
    assert rotation_environment(default_app)["EVENT_BUS_NAME"] == "default"
    put_events = only(grants(default_app, "events:PutEvents"), "events:PutEvents grant")
    assert put_events["Condition"] == {"StringEquals": {"events:source": EVENT_SOURCE}}
    resource = default_app.stack.resolve(put_events["Resource"])
    assert ":event-bus/default" in str(resource)
    assert "*" not in str(resource)


def test_the_notify_topic_setting_must_be_an_sns_arn() -> None:
    from ses_smtp_rotator.cdk import load_settings
    from ses_smtp_rotator.cdk.context_settings import SettingsError

    with pytest.raises(SettingsError, match="notifyTopicArn"):
        load_settings(
            {
                "installations": [
                    {"name": "p", "kionUrl": "https://kion.example.com", "sesRegion": "us-east-1"}
                ],
                "notifyTopicArn": "kion-mail-changes",
            }
        )


def test_cdk_nag_stays_clean_with_a_notify_topic(notify_app: Synthesized) -> None:
    assert notify_app.validation_error is None, notify_app.validation_error
