"""Asking the deployed watch about one installation, so that ``status`` learns Kion's side (what
Kion sends with, where, and the Kion API key's life) without reading the Kion API key.

The watch function is the one the rotation function names in ``WATCH_FUNCTION_NAME`` (the stack
sets it), or the one in the environment variable ``SES_SMTP_ROTATOR_WATCH_FUNCTION``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ses_smtp_rotator.cli.aws_access import AwsAccess, region_of_arn

WATCH_VARIABLE = "SES_SMTP_ROTATOR_WATCH_FUNCTION"


@dataclass(frozen=True)
class WatchAnswer:
    """What the watch found (``document``), or why it could not be asked (``problem``, ``fix``)."""

    function: str
    document: dict[str, Any] | None = None
    problem: str = ""
    fix: str = ""


def watch_function(configured: str | None) -> str | None:
    """The watch to ask: the environment variable wins over the rotation function's setting."""
    return os.environ.get(WATCH_VARIABLE, "").strip() or configured or None


def ask_watch(aws: AwsAccess, function: str, secret_arn: str) -> WatchAnswer:
    """Invoke the watch with one installation; it checks it and changes nothing."""
    client = aws.client("lambda", region_of_arn(function))
    try:
        reply = client.invoke(
            FunctionName=function,
            InvocationType="RequestResponse",
            Payload=json.dumps({"installation": secret_arn}).encode(),
        )
        payload = json.loads(reply["Payload"].read() or b"null")
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "an error")
        fix = (
            f"Allow lambda:InvokeFunction on {function} for your AWS identity (the stack's "
            "OperatorPolicyArn output has it)."
            if code in ("AccessDeniedException", "AccessDenied")
            else f"Check that the watch function {function} exists (stack output "
            f"WatchFunctionName), or set {WATCH_VARIABLE} to its name."
        )
        return WatchAnswer(function, problem=f"lambda:Invoke answered {code}", fix=fix)
    except (BotoCoreError, ValueError) as error:
        return WatchAnswer(
            function,
            problem=f"the watch did not answer ({type(error).__name__})",
            fix="Check your network path to the Lambda API and try again.",
        )
    if reply.get("FunctionError") or not isinstance(payload, dict) or "checks" not in payload:
        error_type = payload.get("errorType", "an error") if isinstance(payload, dict) else "?"
        return WatchAnswer(
            function,
            problem=f"the watch failed ({error_type})",
            fix=f"Its log group (/aws/lambda/{function.rsplit(':', 1)[-1]}) names the cause.",
        )
    return WatchAnswer(function, document=payload)
