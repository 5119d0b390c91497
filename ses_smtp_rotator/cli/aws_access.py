"""AWS access for the operator commands: a boto3 session from ``--profile``/``--region`` (or the
default credential chain and ``AWS_ENDPOINT_URL``), and AWS errors turned into messages that say
what the person at the keyboard can do."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)

_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=20
)
_ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
_NOT_FOUND = frozenset({"ResourceNotFoundException", "NoSuchEntity"})
_EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "UnrecognizedClientException"})


class SetupError(Exception):
    """AWS could not be asked: credentials, region, permissions, or a missing resource."""

    def __init__(self, cause: str, fix: str) -> None:
        self.cause = cause
        self.fix = fix
        super().__init__(f"{cause} Fix: {fix}")


class NotFoundError(SetupError):
    """The resource asked about does not exist."""


@dataclass
class AwsAccess:
    """A boto3 session and the region the secret lives in."""

    session: boto3.Session
    region: str

    def client(
        self,
        service: str,
        region: str | None = None,
        *,
        read_timeout: float | None = None,
        attempts: int | None = None,
    ) -> Any:
        """A client for ``service``; ``read_timeout`` and ``attempts`` override the defaults
        (a synchronous Invoke waits as long as the function may run, and is sent once)."""
        config = _CLIENT_CONFIG
        if read_timeout is not None or attempts is not None:
            config = config.merge(
                Config(
                    read_timeout=read_timeout or _CLIENT_CONFIG.read_timeout,
                    retries={"mode": "standard", "max_attempts": attempts or 3},
                )
            )
        return self.session.client(service, region_name=region or self.region, config=config)


def region_of_arn(arn: str) -> str | None:
    """The region of an ARN (``arn:aws:secretsmanager:us-east-1:...``), None for a plain name."""
    parts = arn.split(":")
    return parts[3] or None if arn.startswith("arn:") and len(parts) > 4 else None


def user_elsewhere(ses_account: str, secret_arn: str) -> str | None:
    """The account of an installation's IAM user when it is not the account of its secret (the
    deployment's): only the deployment's functions reach it, through the access role."""
    parts = secret_arn.split(":")
    deployment = parts[4] if secret_arn.startswith("arn:") and len(parts) > 4 else ""
    return ses_account if ses_account and ses_account != deployment else None


def open_aws(secret_id: str, *, profile: str | None, region: str | None) -> AwsAccess:
    """A session for ``profile`` in ``region``; the region defaults to the secret ARN's, then to
    the usual AWS configuration (AWS_REGION, the profile's region)."""
    try:
        session = boto3.Session(profile_name=profile)
    except ProfileNotFound:
        raise SetupError(
            f"The AWS profile '{profile}' is not configured.",
            "Use a profile from ~/.aws/config (aws configure list-profiles) or drop --profile.",
        ) from None
    # boto3 reads AWS_DEFAULT_REGION; the AWS CLI and Lambda also set AWS_REGION.
    chosen = (
        region or region_of_arn(secret_id) or os.environ.get("AWS_REGION") or session.region_name
    )
    if not chosen:
        raise SetupError(
            "No AWS region is set.",
            "Pass --region (the installation secret's region), give the secret's full ARN, or "
            "set AWS_REGION.",
        )
    return AwsAccess(session, chosen)


@contextmanager
def asking(action: str, resource: str) -> Iterator[None]:
    """Turn the AWS errors of ``action`` on ``resource`` into a SetupError naming the fix.

    Other ClientErrors pass through for the caller to interpret.
    """
    try:
        yield
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in _ACCESS_DENIED:
            raise SetupError(
                f"Your AWS identity may not call {action} on {resource} (AccessDenied).",
                f"Use a profile or role that is allowed {action} (the docs' Security model page "
                "says what the operator role needs).",
            ) from None
        if code in _EXPIRED:
            raise SetupError(
                f"AWS did not accept your credentials for {action} ({code}).",
                "Refresh them (aws sso login, or new session credentials) and run again.",
            ) from None
        if code in _NOT_FOUND:
            raise NotFoundError(
                f"{resource} does not exist ({action} answered {code}).",
                "Check the name or ARN and the region (--region); the stack's outputs list the "
                "installation secrets.",
            ) from None
        raise
    except NoCredentialsError:
        raise SetupError(
            "No AWS credentials were found.",
            "Configure credentials (aws configure, aws sso login, AWS_PROFILE or --profile).",
        ) from None
    except NoRegionError:
        raise SetupError("No AWS region is set.", "Pass --region or set AWS_REGION.") from None
    except BotoCoreError as error:
        raise SetupError(
            f"{action} on {resource} failed before AWS answered ({type(error).__name__}).",
            "Check your network path to the AWS API (proxy, VPN) and AWS_ENDPOINT_URL, then retry.",
        ) from None
