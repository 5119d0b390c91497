"""IAM: the access keys of the SES SMTP user."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from ses_smtp_rotator.functions.errors import (
    AwsConnectionError,
    InvalidSecretError,
    UnrecognisedNewKeysError,
)
from ses_smtp_rotator.functions.services.aws_clients import (
    aws_call,
    client,
    error_code,
    single_attempt_client,
)


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

    def __init__(
        self,
        user_name: str,
        iam: Any | None = None,
        iam_once: Any | None = None,
        *,
        reached_as: str = "",
        acting_role: str = "the rotation function's role",
    ) -> None:
        """``reached_as``: how the user's account is reached, when it is not the function's own,
        and ``acting_role`` the role its calls are made as (both named in errors, so that a
        refusal points at the right role)."""
        self.user_name = user_name
        self._client = iam or client("iam")
        self._client_once = iam_once or (iam if iam is not None else single_attempt_client("iam"))
        self._resource = f"IAM user {user_name}" + (f" {reached_as}" if reached_as else "")
        self._acting_role = acting_role

    def _call(self, action: str) -> AbstractContextManager[None]:
        """``aws_call`` for ``action`` on this user, made as this user's acting role."""
        return aws_call(action, self._resource, self._acting_role)

    def list(self) -> list[AccessKey]:
        with self._call("iam:ListAccessKeys"), self._user_must_exist():
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
        """Create a key, after listing the user's keys so that a key whose reply was lost can be
        told apart; raise KeyLimitReachedError when the user already has two.

        CreateAccessKey is sent once, never resent by the SDK. When its reply is lost the key may
        exist all the same, its secret never seen: the one key that appeared since this call
        began is deleted and the key created again, so no orphan holds one of the user's two
        places.
        """
        before = {key.access_key_id for key in self.list()}
        try:
            return self._create_once()
        except AwsConnectionError:  # the request may have taken effect all the same
            self._delete_orphan_since(before)
        return self._create_once()

    def _create_once(self) -> NewAccessKey:
        with self._call("iam:CreateAccessKey"), self._user_must_exist():
            try:
                response = self._client_once.create_access_key(UserName=self.user_name)
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
        with self._call("iam:GetAccessKeyLastUsed"):
            response = self._client.get_access_key_last_used(AccessKeyId=access_key_id)
        record = response.get("AccessKeyLastUsed", {})
        return KeyLastUsed(
            used_at=record.get("LastUsedDate"),
            service=record.get("ServiceName", "N/A"),
            region=record.get("Region", "N/A"),
        )

    def _set_status(self, access_key_id: str, status: str) -> None:
        """Set a key's status; a key already gone is left to the caller to notice (no error)."""
        with self._call("iam:UpdateAccessKey"):
            try:
                self._client.update_access_key(
                    UserName=self.user_name, AccessKeyId=access_key_id, Status=status
                )
            except ClientError as error:
                if error_code(error) != "NoSuchEntity":
                    raise

    def _delete_orphan_since(self, before: set[str]) -> None:
        """Delete the key a lost CreateAccessKey made: the one key not there before it."""
        appeared = [key for key in self.list() if key.access_key_id not in before]
        if len(appeared) > 1:
            raise UnrecognisedNewKeysError(
                f"{len(appeared)} access keys appeared on {self._resource} while this step's "
                "CreateAccessKey reply was lost, so the one it made cannot be told apart.",
                "Delete the access key(s) of this user that no installation secret records "
                "(compare ListAccessKeys with the secrets' access_key_id), then retry.",
            )
        for orphan in appeared:
            self.delete(orphan.access_key_id)

    def delete(self, access_key_id: str) -> None:
        """Delete a key; a key that is already gone is fine."""
        with self._call("iam:DeleteAccessKey"):
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
