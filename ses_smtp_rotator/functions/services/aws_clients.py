"""boto3 clients shared by the IAM and Secrets Manager modules, and the translation of AWS errors
into errors an operator can act on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError

from ses_smtp_rotator.functions.errors import AwsConnectionError, AwsPermissionError

AWS_CONNECT_TIMEOUT = 5.0
AWS_READ_TIMEOUT = 20.0
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4},
    connect_timeout=AWS_CONNECT_TIMEOUT,
    read_timeout=AWS_READ_TIMEOUT,
)
SINGLE_ATTEMPT_CONFIG = CLIENT_CONFIG.merge(Config(retries={"max_attempts": 1}))
_ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
_THROTTLED = frozenset(
    {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"}
)


@cache
def client(service: str) -> Any:
    """A boto3 client for ``service``, made once per process and reused across invocations."""
    return boto3.client(service, config=CLIENT_CONFIG)


@cache
def single_attempt_client(service: str) -> Any:
    """A client that sends each request once: for calls that must not be resent when a reply is
    lost (a resent CreateAccessKey makes a second key)."""
    return boto3.client(service, config=SINGLE_ATTEMPT_CONFIG)


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@contextmanager
def aws_call(
    action: str, resource: str, acting_role: str = "the rotation function's role"
) -> Iterator[None]:
    """Turn AccessDenied, AWS-side failures (5xx, throttling, after botocore's retries) and
    network failures of ``action`` on ``resource`` into one clear error; an AccessDenied's fix
    names ``acting_role``, the role the call was made as.

    Other ClientErrors pass through for the caller to interpret.
    """
    try:
        yield
    except ClientError as error:
        if error_code(error) in _ACCESS_DENIED:
            raise AwsPermissionError(
                f"AWS refused {action} on {resource} (AccessDenied).",
                f"Allow {action} on {resource} in {acting_role}, and check that no service "
                "control policy or permissions boundary denies it.",
            ) from None
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if status >= 500 or error_code(error) in _THROTTLED:
            raise AwsConnectionError(
                f"AWS answered {action} on {resource} with {error_code(error) or 'an error'} "
                f"(HTTP {status}), a failure on AWS's side that persisted through retries.",
                "Nothing to change in the setup: Secrets Manager retries the rotation. If it "
                "persists, check the AWS Health Dashboard and the API's service quotas.",
            ) from None
        raise
    except NoCredentialsError:
        raise AwsPermissionError(
            f"No AWS credentials were found for {action} on {resource}.",
            "Run the function with its execution role (or, locally, configure AWS credentials).",
        ) from None
    except (BotoConnectionError, HTTPClientError) as error:
        raise AwsConnectionError(
            f"{action} on {resource} failed before AWS answered ({type(error).__name__}).",
            "Check the function's network path to the AWS API (VPC endpoints or NAT) and retry.",
        ) from None
