"""Entry point of the daily watch.

- From its schedule (any other event): list the deployment's installations and send one message
  per installation to the watch's queue (see ``daily_watch`` for why a queue).
- From that queue (an SQS event, one installation per message): check the installation on what
  is left of this invocation, record its metrics, alert, and start its Kion API key renewal when
  due. A message whose handling raised is handed back to SQS, which delivers it again and, after
  the queue's last attempt, keeps it in the dead-letter queue (an alarm names it).
- Invoked with ``{"installation": "<secret name or ARN>"}`` (what ``ses-smtp-rotator status``
  does): check that one installation and return what was found as JSON, starting nothing. The
  operator never needs to read the Kion API key to learn Kion's side.
"""

from __future__ import annotations

import json
from datetime import timedelta
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.services import account_access
from ses_smtp_rotator.functions.telemetry import logger, metrics
from ses_smtp_rotator.functions.watch.daily_watch import Watch, WatchConfig
from ses_smtp_rotator.functions.watch.health import HealthCheck


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = _config()
    account_access.new_invocation()
    health_check = HealthCheck(config.limits, RotationConfig.from_environment())
    installation = event.get("installation") if isinstance(event, dict) else None
    if isinstance(installation, str) and installation.strip():
        logger.append_keys(installation=installation)
        return health_check.check(installation.strip()).to_document()
    watch = Watch(config, health_check)
    if isinstance(event, dict) and isinstance(event.get("Records"), list):
        return _watch_messages(watch, event["Records"], context)
    if config.queue_url is None:  # run outside the stack (the demo): check all here
        report = watch.run()
        logger.info("Watch finished", **report.to_document())
        return report.to_document()
    return {"dispatched": watch.dispatch()}


ACTING_RESERVE = timedelta(seconds=30)
"""Kept from a message's budget for what follows the checks: the renewal, metrics, alert."""


def _watch_messages(
    watch: Watch, records: list[dict[str, Any]], context: LambdaContext
) -> dict[str, Any]:
    failures = []
    for record in records:
        secret_arn = None
        try:
            secret_arn = json.loads(record["body"])["installation"]
            left = timedelta(milliseconds=context.get_remaining_time_in_millis())
            health = watch.watch_one(secret_arn, budget=max(left - ACTING_RESERVE, timedelta()))
            logger.info("Watch message handled", installation=health.installation)
        except Exception:
            # The cause and the installation together: after the queue's last delivery the
            # message waits in the dead-letter queue, and this record says why.
            logger.exception(
                "Watch message not handled",
                message_id=record.get("messageId"),
                installation=secret_arn,
                delivery=record.get("attributes", {}).get("ApproximateReceiveCount"),
            )
            failures.append({"itemIdentifier": record.get("messageId")})
    return {"batchItemFailures": failures}


@cache
def _config() -> WatchConfig:
    return WatchConfig.from_environment()
