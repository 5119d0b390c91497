"""What the commands need to know about the rotation function: its log group and its timeout.

Both come from ``lambda:GetFunctionConfiguration`` when the caller may read it; otherwise the log
group is Lambda's default and the timeout the stack's default, and ``timeout_source`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

DEFAULT_TIMEOUT = timedelta(seconds=900)
"""The stack's default function timeout, assumed when the configuration cannot be read."""


@dataclass(frozen=True)
class RotationFunction:
    arn: str
    log_group: str
    timeout: timedelta
    timeout_source: str
    """Where ``timeout`` comes from, in words: the configuration, or why the default is used."""
    watch_function: str | None = None
    """The daily watch the stack deployed beside it (``WATCH_FUNCTION_NAME``), when known."""

    @property
    def name(self) -> str:
        return function_name(self.arn)

    @property
    def timeout_configured(self) -> bool:
        return self.timeout_source == "configured"

    def describe_timeout(self) -> str:
        seconds = f"{self.timeout.total_seconds():.0f} s"
        if self.timeout_configured:
            return f"{seconds} (the function's configuration)"
        return f"{seconds} (default: {self.timeout_source})"


def function_name(function_arn: str) -> str:
    return function_arn.split(":function:", 1)[-1].split(":", 1)[0]


def describe_function(
    lambda_client: Any, function_arn: str, *, log_group: str | None = None
) -> RotationFunction:
    """The function's log group and timeout; never raises for a configuration it cannot read."""
    default_group = f"/aws/lambda/{function_name(function_arn)}"
    try:
        configuration = lambda_client.get_function_configuration(FunctionName=function_arn)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "an error")
        return RotationFunction(
            function_arn,
            log_group or default_group,
            DEFAULT_TIMEOUT,
            f"lambda:GetFunctionConfiguration answered {code}",
        )
    except BotoCoreError as error:
        return RotationFunction(
            function_arn,
            log_group or default_group,
            DEFAULT_TIMEOUT,
            f"Lambda did not answer ({type(error).__name__})",
        )
    timeout = configuration.get("Timeout")
    configured_group = configuration.get("LoggingConfig", {}).get("LogGroup")
    variables = configuration.get("Environment", {}).get("Variables", {})
    return RotationFunction(
        function_arn,
        log_group or configured_group or default_group,
        timedelta(seconds=int(timeout)) if timeout else DEFAULT_TIMEOUT,
        "configured" if timeout else "the configuration names no timeout",
        variables.get("WATCH_FUNCTION_NAME") or None,
    )
