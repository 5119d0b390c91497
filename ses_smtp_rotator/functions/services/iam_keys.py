"""IAM: the access keys of the SES SMTP user."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from ses_smtp_rotator.functions.errors import InvalidSecretError
from ses_smtp_rotator.functions.services.aws_clients import aws_call, client, error_code


class KeyLimitReachedError(Exception):
    """The user already has the two access keys IAM allows."""


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    active: bool
    created_at: datetime


@dataclass(frozen=True)
class KeyLastUsed:
    """IAM's last-used record of a key: when, by which service, in which region."""

    used_at: datetime | None
    service: str
    region: str

    def describe(self) -> str:
        if self.used_at is None:
            return "never used by a signed AWS request"
        return f"last used {self.used_at:%Y-%m-%d %H:%M} UTC by {self.service} in {self.region}"


@dataclass(frozen=True)
class NewAccessKey:
    """A key just created. Its secret is only ever turned into an SMTP password, never kept."""

    access_key_id: str
    secret_access_key: str = field(repr=False)


class UserAccessKeys:
    """Lists, creates, deactivates, reactivates and deletes the access keys of one IAM user."""

    def __init__(self, user_name: str, iam: Any | None = None) -> None:
        self.user_name = user_name
        self._client = iam or client("iam")
        self._resource = f"IAM user {user_name}"

    def list(self) -> list[AccessKey]:
        with aws_call("iam:ListAccessKeys", self._resource), self._user_must_exist():
            response = self._client.list_access_keys(UserName=self.user_name)
        return [
            AccessKey(
                access_key_id=entry["AccessKeyId"],
                active=entry.get("Status") == "Active",
                created_at=entry["CreateDate"],
            )
            for entry in response.get("AccessKeyMetadata", [])
        ]

    def create(self) -> NewAccessKey:
        """Create a key; raise KeyLimitReachedError when the user already has two."""
        with aws_call("iam:CreateAccessKey", self._resource), self._user_must_exist():
            try:
                response = self._client.create_access_key(UserName=self.user_name)
            except ClientError as error:
                if error_code(error) == "LimitExceeded":
                    raise KeyLimitReachedError from None
                raise
        key = response["AccessKey"]
        return NewAccessKey(key["AccessKeyId"], key["SecretAccessKey"])

    def deactivate(self, access_key_id: str) -> None:
        """Set a key Inactive: SES refuses its SMTP password until it is made Active again."""
        self._set_status(access_key_id, "Inactive")

    def reactivate(self, access_key_id: str) -> None:
        """Set a key Active again: its SMTP password works as before."""
        self._set_status(access_key_id, "Active")

    def last_used(self, access_key_id: str) -> KeyLastUsed:
        """IAM's record of the key's last signed request. Information only: AWS does not say
        that SES SMTP logins or sending update it."""
        with aws_call("iam:GetAccessKeyLastUsed", self._resource):
            response = self._client.get_access_key_last_used(AccessKeyId=access_key_id)
        record = response.get("AccessKeyLastUsed", {})
        return KeyLastUsed(
            used_at=record.get("LastUsedDate"),
            service=record.get("ServiceName", "N/A"),
            region=record.get("Region", "N/A"),
        )

    def _set_status(self, access_key_id: str, status: str) -> None:
        """Set a key's status; a key already gone is left to the caller to notice (no error)."""
        with aws_call("iam:UpdateAccessKey", self._resource):
            try:
                self._client.update_access_key(
                    UserName=self.user_name, AccessKeyId=access_key_id, Status=status
                )
            except ClientError as error:
                if error_code(error) != "NoSuchEntity":
                    raise

    def delete(self, access_key_id: str) -> None:
        """Delete a key; a key that is already gone is fine."""
        with aws_call("iam:DeleteAccessKey", self._resource):
            try:
                self._client.delete_access_key(UserName=self.user_name, AccessKeyId=access_key_id)
            except ClientError as error:
                if error_code(error) != "NoSuchEntity":
                    raise

    @contextmanager
    def _user_must_exist(self) -> Iterator[None]:
        """Turn IAM's NoSuchEntity for the user into an error about the secret's iam_user_name."""
        try:
            yield
        except ClientError as error:
            if error_code(error) == "NoSuchEntity":
                raise InvalidSecretError(
                    "iam_user_name",
                    f"names IAM user '{self.user_name}', which does not exist",
                    "Set it to the IAM user whose access keys Kion sends mail with.",
                ) from None
            raise
