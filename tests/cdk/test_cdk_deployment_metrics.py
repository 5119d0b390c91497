"""Metrics, alarms and the dashboard carry the deployment, so two stacks in one account and region
keep them apart: every function names its deployment, every alarm on the functions' metrics and
every dashboard search asks for exactly the dimensions the functions publish."""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stdout

import pytest
from synthesized_app import Synthesized, only, synthesize

from ses_smtp_rotator.functions.installation_metrics import put_installation_metrics

NAMESPACE = "SesSmtpRotator"


@pytest.fixture(scope="module")
def dr_app() -> Synthesized:
    """The same installations under another stack name."""
    return synthesize({"stackName": "SesSmtpRotatorDr"})


def published_dimensions(monkeypatch: pytest.MonkeyPatch, deployment: str) -> list[str]:
    """The dimension names of the per-installation metrics, as the functions publish them."""
    from aws_lambda_powertools.metrics import MetricUnit

    monkeypatch.setenv("DEPLOYMENT_NAME", deployment)
    printed = io.StringIO()
    with redirect_stdout(printed):
        put_installation_metrics("prod", {"Healthy": (MetricUnit.Count, 1)})
    record = json.loads(printed.getvalue().strip().splitlines()[-1])
    [directive] = record["_aws"]["CloudWatchMetrics"]
    [dimensions] = directive["Dimensions"]
    assert record["deployment"] == deployment
    return dimensions


def test_every_function_names_its_deployment(default_app: Synthesized) -> None:
    rotation = default_app.stack.rotation
    functions = default_app.resources("AWS::Lambda::Function")
    for function in (rotation.function, rotation.key_renewal_function, rotation.watch.function):
        variables = functions[default_app.logical_id(function)]["Properties"]["Environment"]
        assert variables["Variables"]["DEPLOYMENT_NAME"] == "SesSmtpRotator"


def test_every_alarm_on_the_functions_metrics_asks_for_this_deployment(
    default_app: Synthesized, dr_app: Synthesized
) -> None:
    for app, deployment in ((default_app, "SesSmtpRotator"), (dr_app, "SesSmtpRotatorDr")):
        own = [
            alarm["Properties"]
            for alarm in app.resources("AWS::CloudWatch::Alarm").values()
            if alarm["Properties"].get("Namespace") == NAMESPACE
        ]
        assert own, "no alarm on the functions' metrics"
        for alarm in own:
            assert {"Name": "deployment", "Value": deployment} in alarm["Dimensions"], alarm


def test_the_dashboard_searches_the_dimensions_the_functions_publish_for_this_deployment(
    default_app: Synthesized, monkeypatch: pytest.MonkeyPatch
) -> None:
    dashboard = only(default_app.resources("AWS::CloudWatch::Dashboard"), "dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    schemas = re.findall(r"\{(SesSmtpRotator(?:,\w+)+)\}", body)
    assert schemas, "no metric search"
    published = set(published_dimensions(monkeypatch, "SesSmtpRotator"))
    for schema in schemas:
        assert set(schema.split(",")[1:]) == published
    searches = body.split("SEARCH(")[1:]
    assert all('deployment=\\\\\\"SesSmtpRotator\\\\\\"' in search for search in searches), searches


def test_the_dashboard_is_named_after_the_stack(
    default_app: Synthesized, dr_app: Synthesized
) -> None:
    names = {
        only(app.resources("AWS::CloudWatch::Dashboard"), "dashboard")["Properties"][
            "DashboardName"
        ]
        for app in (default_app, dr_app)
    }
    assert names == {"SesSmtpRotator-ses-smtp-rotation", "SesSmtpRotatorDr-ses-smtp-rotation"}
