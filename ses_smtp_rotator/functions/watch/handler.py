"""Entry point of the daily watch.

- From its schedule (any event without ``installation``): check every installation of the
  deployment, record metrics, alert, and start the Kion API key renewals that are due.
- Invoked with ``{"installation": "<secret name or ARN>"}`` (what ``ses-smtp-rotator status``
  does): check that one installation and return what was found as JSON, starting nothing. The
  operator never needs to read the Kion API key to learn Kion's side.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.telemetry import logger, metrics
from ses_smtp_rotator.functions.watch.daily_watch import Watch, WatchConfig
from ses_smtp_rotator.functions.watch.health import HealthCheck


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = _config()
    health_check = HealthCheck(config.limits, RotationConfig.from_environment())
    installation = event.get("installation") if isinstance(event, dict) else None
    if isinstance(installation, str) and installation.strip():
        logger.append_keys(installation=installation)
        return health_check.check(installation.strip()).to_document()
    report = Watch(config, health_check).run()
    logger.info("Watch finished", **report.to_document())
    return report.to_document()


@cache
def _config() -> WatchConfig:
    return WatchConfig.from_environment()
