"""Creating an access key when IAM applies CreateAccessKey but its reply is lost."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from ses_smtp_rotator.functions.errors import AwsPermissionError
from ses_smtp_rotator.functions.services import aws_clients
from ses_smtp_rotator.functions.services.iam_keys import UserAccessKeys

USER = "ses-smtp-user"


@pytest.fixture
def iam(aws: None) -> Any:
    """IAM (moto) with the SES SMTP user. The function's cached clients are left as they are:
    other tests' fault injectors and warm readers hold them."""
    iam = boto3.client("iam")
    iam.create_user(UserName=USER)
    return iam


@pytest.fixture
def single_attempt_iam() -> Iterator[Any]:
    """The function's own single-attempt IAM client; handlers a test registers on it are taken
    off again afterwards, so no other test sees them."""
    client = aws_clients.single_attempt_client("iam")
    registered: list[tuple[str, Any]] = []
    register = client.meta.events.register

    def tracked(event_name: str, handler: Any, *args: Any, **kwargs: Any) -> None:
        registered.append((event_name, handler))
        register(event_name, handler, *args, **kwargs)

    client.meta.events.register = tracked
    yield client
    client.meta.events.register = register
    for event_name, handler in registered:
        client.meta.events.unregister(event_name, handler)


def drop_replies(client: Any, count: int) -> list[str]:
    """Let IAM apply the next ``count`` CreateAccessKey calls on ``client`` and lose their
    replies; returns the ids of the keys those calls made."""
    made: list[str] = []

    def after_call(parsed: dict[str, Any], **_: Any) -> None:
        if len(made) < count:
            made.append(parsed["AccessKey"]["AccessKeyId"])
            raise ReadTimeoutError(endpoint_url="https://iam.invalid (reply lost)")

    client.meta.events.register("after-call.iam.CreateAccessKey", after_call)
    return made


def test_a_lost_reply_leaves_no_orphan_and_returns_a_usable_key(
    iam: Any, single_attempt_iam: Any
) -> None:
    keys = UserAccessKeys(USER)
    orphans = drop_replies(single_attempt_iam, count=1)

    created = keys.create()

    remaining = [
        entry["AccessKeyId"] for entry in iam.list_access_keys(UserName=USER)["AccessKeyMetadata"]
    ]
    assert len(orphans) == 1
    assert remaining == [created.access_key_id]
    assert created.access_key_id not in orphans


def test_the_create_is_never_resent_by_the_sdk(iam: Any, single_attempt_iam: Any) -> None:
    sent: list[str] = []
    client = single_attempt_iam
    client.meta.events.register(
        "before-send.iam.CreateAccessKey", lambda **_: sent.append("CreateAccessKey")
    )
    drop_replies(client, count=1)

    UserAccessKeys(USER).create()

    assert sent == ["CreateAccessKey", "CreateAccessKey"]  # the lost one, then the new one


def test_keys_already_there_are_kept(iam: Any, single_attempt_iam: Any) -> None:
    held = iam.create_access_key(UserName=USER)["AccessKey"]["AccessKeyId"]
    drop_replies(single_attempt_iam, count=1)

    created = UserAccessKeys(USER).create()

    remaining = {
        entry["AccessKeyId"] for entry in iam.list_access_keys(UserName=USER)["AccessKeyMetadata"]
    }
    assert remaining == {held, created.access_key_id}


def test_a_refused_key_action_names_the_role_the_call_was_made_as(iam: Any) -> None:
    def refuse(**_: Any) -> None:
        error = {"Code": "AccessDenied", "Message": "denied by a service control policy"}
        raise ClientError({"Error": error}, "ListAccessKeys")

    iam.meta.events.register("before-call.iam.ListAccessKeys", refuse)
    keys = UserAccessKeys(
        USER,
        iam=iam,
        reached_as="in account 222233334444",
        acting_role="the access role of <stackName>-Access in account 222233334444",
    )

    with pytest.raises(AwsPermissionError) as refused:
        keys.list()

    assert refused.value.cause == (
        f"AWS refused iam:ListAccessKeys on IAM user {USER} in account 222233334444 (AccessDenied)."
    )
    assert refused.value.fix.startswith(
        f"Allow iam:ListAccessKeys on IAM user {USER} in account 222233334444 in the access role "
        "of <stackName>-Access in account 222233334444, and check that no service control policy"
    )
