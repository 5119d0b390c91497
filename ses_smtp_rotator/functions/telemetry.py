"""Powertools Logger, Metrics and Tracer shared by the handler and the steps.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE; the defaults below apply when they are unset. Every metric carries
the deployment (``DEPLOYMENT_NAME``, which the stack sets) as its ``deployment`` dimension, so two
stacks in one account and region keep their metrics, alarms and dashboards apart.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from functools import cache

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "ses-smtp-rotator"
NAMESPACE = "SesSmtpRotator"
DEPLOYMENT_DIMENSION = "deployment"


def deployment_dimensions(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The ``deployment`` dimension from ``DEPLOYMENT_NAME``; none when it is unset (locally)."""
    deployment = environ.get("DEPLOYMENT_NAME", "").strip()
    return {DEPLOYMENT_DIMENSION: deployment} if deployment else {}


logger = Logger(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)
metrics.set_default_dimensions(**deployment_dimensions())

# botocore's DEBUG records carry request parameters and response bodies, secret values included.
# Whatever log level the function or the Lambda service sets, they stay off.
for library in ("botocore", "boto3", "urllib3"):
    logging.getLogger(library).setLevel(logging.INFO)

# Most steps record no metric; Powertools would warn about the empty flush on every invocation.
warnings.filterwarnings("ignore", message="No application metrics to publish")


@cache
def tracer() -> Tracer:
    """The Tracer, made on the first invocation rather than at import: the X-Ray SDK builds a
    botocore client as it loads, which would more than double the module's import time."""
    return Tracer(service=SERVICE)
