"""A CloudWatch dashboard of the deployment: first, per installation, the latest of its last
rotation (days ago), that rotation's outcome, the Kion API key's days left and the watch's verdict;
then their history with the SES acceptance wait and failing checks; beside them the deployment's
alarms and function errors.

Each per-installation graph is one metric search over the ``installation`` dimension, so every
installation gets its own line and the dashboard's size does not grow with their number.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from .function import METRICS_NAMESPACE, SERVICE_NAME

INSTALLATION_DIMENSION = "installation"
DAY = Duration.days(1)
# (metric name, statistic, graph title, left axis label)
PER_INSTALLATION = (
    ("Healthy", "Minimum", "Health per installation (1 healthy, 0 failing)", "healthy"),
    ("DaysSinceRotation", "Maximum", "Days since the last rotation", "days"),
    ("KionApiKeyDaysLeft", "Minimum", "Kion API key: days left", "days"),
    ("SesAcceptWaitSeconds", "Maximum", "SES acceptance wait of each rotation", "seconds"),
    ("ChecksFailing", "Maximum", "Failing checks per installation", "checks"),
)
# The latest value per installation: (metric name, statistic, title).
LATEST_PER_INSTALLATION = (
    ("DaysSinceRotation", "Maximum", "Last rotation (days ago)"),
    ("RotationOutcome", "Minimum", "Last rotation's outcome (1 finished, 0 a step failed)"),
    ("KionApiKeyDaysLeft", "Minimum", "Kion API key: days left"),
    ("Healthy", "Minimum", "Watch verdict (1 healthy, 0 failing)"),
)


def installation_search(metric_name: str, statistic: str, period: Duration) -> str:
    """A metric search with one line per installation."""
    schema = f"{{{METRICS_NAMESPACE},{INSTALLATION_DIMENSION},service}}"
    return (
        f'SEARCH(\'{schema} MetricName="{metric_name}" service="{SERVICE_NAME}"\', '
        f"'{statistic}', {int(period.to_seconds())})"
    )


class RotationDashboard(Construct):
    """``dashboard``: the deployment's dashboard."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dashboard_name: str,
        functions: Sequence[tuple[str, lambda_.IFunction]],
        alarms: Sequence[cloudwatch.IAlarm],
        period: Duration = DAY,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=dashboard_name,
            default_interval=Duration.days(35),
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=24, height=4)
        )
        self.dashboard.add_widgets(
            *(
                cloudwatch.SingleValueWidget(
                    title=title,
                    metrics=[
                        cloudwatch.MathExpression(
                            expression=installation_search(metric_name, statistic, period),
                            using_metrics={},
                            label="",
                            period=period,
                        )
                    ],
                    width=6,
                    height=6,
                )
                for metric_name, statistic, title in LATEST_PER_INSTALLATION
            )
        )
        graphs = [
            cloudwatch.GraphWidget(
                title=title,
                left=[
                    cloudwatch.MathExpression(
                        expression=installation_search(metric_name, statistic, period),
                        using_metrics={},
                        label="",
                        period=period,
                    )
                ],
                left_y_axis=cloudwatch.YAxisProps(label=axis, show_units=False, min=0),
                legend_position=cloudwatch.LegendPosition.RIGHT,
                width=12,
                height=6,
            )
            for metric_name, statistic, title, axis in PER_INSTALLATION
        ]
        graphs.append(
            cloudwatch.GraphWidget(
                title="Function errors",
                left=[
                    function.metric_errors(period=period, statistic="Sum", label=label)
                    for label, function in functions
                ],
                left_y_axis=cloudwatch.YAxisProps(label="errors", show_units=False, min=0),
                width=12,
                height=6,
            )
        )
        for index in range(0, len(graphs), 2):
            self.dashboard.add_widgets(*graphs[index : index + 2])
