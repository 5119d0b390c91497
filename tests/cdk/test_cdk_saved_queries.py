"""The stack ships Logs Insights saved queries: a rotation's story, failures by installation and
the daily watch's findings, filed under the deployment's name."""

from __future__ import annotations

from synthesized_app import Synthesized


def test_three_saved_queries_read_the_functions_log_groups(default_app: Synthesized) -> None:
    rotation = default_app.stack.rotation
    queries = {
        q["Properties"]["Name"]: q["Properties"]
        for q in default_app.resources("AWS::Logs::QueryDefinition").values()
    }
    folder = "ses-smtp-rotator/SesSmtpRotator"
    assert sorted(queries) == [
        f"{folder}/failures-by-installation",
        f"{folder}/rotation-story",
        f"{folder}/watch-findings",
    ]
    rotation_group = {"Ref": default_app.logical_id(rotation.log_group)}
    watch_group = {"Ref": default_app.logical_id(rotation.watch.log_group)}
    story = queries[f"{folder}/rotation-story"]
    assert rotation_group in story["LogGroupNames"]
    assert len(story["LogGroupNames"]) == 2  # with the Kion API key renewal's
    assert "client_request_token" in story["QueryString"]
    failures = queries[f"{folder}/failures-by-installation"]["QueryString"]
    assert 'level = "ERROR"' in failures
    assert "by secret_id" in failures
    findings = queries[f"{folder}/watch-findings"]
    assert findings["LogGroupNames"] == [watch_group]
    assert '"Installation checked"' in findings["QueryString"]
