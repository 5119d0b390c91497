"""Logs Insights saved queries (``AWS::Logs::QueryDefinition``) for what an operator asks of the
functions' logs, filed under ``ses-smtp-rotator/<deployment>/`` in the console's query list:

- the story of the latest rotations and renewals, step by step (filter on one
  ``client_request_token`` for one rotation's story);
- failures by installation secret: how many, the last failed step, its cause and fix;
- the daily watch's findings: every installation that was not healthy, and the notices it sent.

``ses-smtp-rotator history`` tells the same from the command line.
"""

from __future__ import annotations

from aws_cdk import aws_logs as logs
from constructs import Construct


class SavedQueries(Construct):
    """``queries``: the three saved queries of one deployment."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment_name: str,
        rotation_log_groups: list[logs.ILogGroup],
        watch_log_group: logs.ILogGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        folder = f"ses-smtp-rotator/{deployment_name}"
        self.queries = [
            logs.QueryDefinition(
                self,
                "RotationStory",
                query_definition_name=f"{folder}/rotation-story",
                log_groups=rotation_log_groups,
                query_string=logs.QueryString(
                    fields=[
                        "@timestamp",
                        "secret_id",
                        "client_request_token",
                        "step",
                        "level",
                        "message",
                        "error",
                        "fix",
                        "access_key_id",
                        "api_key_id",
                    ],
                    filter_statements=["ispresent(client_request_token)"],
                    sort="@timestamp asc",
                    limit=1000,
                ),
            ),
            logs.QueryDefinition(
                self,
                "FailuresByInstallation",
                query_definition_name=f"{folder}/failures-by-installation",
                log_groups=rotation_log_groups,
                query_string=logs.QueryString(
                    filter_statements=['level = "ERROR"', "ispresent(secret_id)"],
                    stats=(
                        "count(*) as failures, max(@timestamp) as last_failure, "
                        "latest(step) as last_failed_step, latest(message) as cause, "
                        "latest(fix) as fix by secret_id"
                    ),
                    sort="failures desc",
                ),
            ),
            logs.QueryDefinition(
                self,
                "WatchFindings",
                query_definition_name=f"{folder}/watch-findings",
                log_groups=[watch_log_group],
                query_string=logs.QueryString(
                    fields=[
                        "@timestamp",
                        "installation",
                        "verdict",
                        "notice",
                        "failing.0",
                        "failing.1",
                        "unchecked.0",
                        "message",
                    ],
                    filter_statements=[
                        '(message = "Installation checked" and verdict != "healthy") '
                        'or message = "Incident told"'
                    ],
                    sort="@timestamp desc",
                    limit=1000,
                ),
            ),
        ]
