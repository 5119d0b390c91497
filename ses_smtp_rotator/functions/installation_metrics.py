"""Metrics with the installation as their dimension, for the dashboard's per-installation views.

Powertools' shared ``metrics`` object flushes once per invocation with one set of dimensions; the
watch checks many installations in one invocation, so each installation's metrics are flushed on
their own (one EMF record each).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from ses_smtp_rotator.functions.telemetry import NAMESPACE, SERVICE, deployment_dimensions

INSTALLATION_DIMENSION = "installation"
SMTP_NAME_SEGMENT = "/smtp/"


def installation_name(secret_id: str) -> str:
    """The installation a secret belongs to, from its name or ARN: what follows ``/smtp/`` in a
    name the stack gives (``ses-smtp-rotator/<deployment>/smtp/<installation>``), otherwise the
    whole name; an ARN's random suffix is dropped."""
    name = secret_id
    if ":secret:" in secret_id:
        name = secret_id.split(":secret:", 1)[1]
        if len(name) > 7 and name[-7] == "-":
            name = name[:-7]
    return name.rsplit(SMTP_NAME_SEGMENT, 1)[-1] or name


def put_installation_metrics(
    installation: str, values: Mapping[str, tuple[MetricUnit, float]]
) -> None:
    """Emit ``values`` (name -> (unit, value)) with ``installation`` (and the deployment) as
    dimensions."""
    if not values:
        return
    recorder = EphemeralMetrics(service=SERVICE, namespace=NAMESPACE)
    for name, value in deployment_dimensions().items():
        recorder.add_dimension(name, value)
    recorder.add_dimension(INSTALLATION_DIMENSION, installation)
    for name, (unit, value) in values.items():
        recorder.add_metric(name, unit, value)
    recorder.flush_metrics()
