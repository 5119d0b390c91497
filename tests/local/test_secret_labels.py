"""The suite's Secrets Manager moves staging labels as the PutSecretValue and
UpdateSecretVersionStage references say, not as moto 5.x does (two AWSCURRENT after a put that
follows a label move)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from ses_smtp_rotator.local.secret_labels import install_label_moves

SECRET = "kion-smtp/prod"


@pytest.fixture
def secretsmanager() -> Iterator[Any]:
    install_label_moves()
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        client.create_secret(Name=SECRET, SecretString="v1", ClientRequestToken="v1" * 18)
        yield client


def labels(secretsmanager: Any) -> dict[str, list[str]]:
    """Version id (its value) to labels, unlabelled versions left out."""
    described = secretsmanager.describe_secret(SecretId=SECRET)["VersionIdsToStages"]
    return {
        secretsmanager.get_secret_value(SecretId=SECRET, VersionId=vid)["SecretString"]: sorted(
            stages
        )
        for vid, stages in described.items()
        if stages
    }


def put(secretsmanager: Any, value: str, *stages: str) -> str:
    request: dict[str, Any] = {"SecretId": SECRET, "SecretString": value}
    if stages:
        request["VersionStages"] = list(stages)
    return secretsmanager.put_secret_value(**request)["VersionId"]


def version_of(secretsmanager: Any, stage: str) -> str:
    return secretsmanager.get_secret_value(SecretId=SECRET, VersionStage=stage)["VersionId"]


def finish_rotation(secretsmanager: Any, value: str) -> None:
    """What a rotation does: store AWSPENDING, then move AWSCURRENT onto it."""
    pending = put(secretsmanager, value, "AWSPENDING")
    secretsmanager.update_secret_version_stage(
        SecretId=SECRET,
        VersionStage="AWSCURRENT",
        MoveToVersionId=pending,
        RemoveFromVersionId=version_of(secretsmanager, "AWSCURRENT"),
    )


def test_a_put_with_awscurrent_after_a_rotation_leaves_one_current(secretsmanager):
    finish_rotation(secretsmanager, "v2")
    put(secretsmanager, "v3")

    assert labels(secretsmanager) == {
        "v2": ["AWSPENDING", "AWSPREVIOUS"],
        "v3": ["AWSCURRENT"],
    }
    assert secretsmanager.get_secret_value(SecretId=SECRET)["SecretString"] == "v3"


def test_moving_awscurrent_onto_the_pending_version_leaves_awspending_there(secretsmanager):
    finish_rotation(secretsmanager, "v2")

    assert labels(secretsmanager) == {
        "v1": ["AWSPREVIOUS"],
        "v2": ["AWSCURRENT", "AWSPENDING"],
    }


def test_a_put_keeps_the_other_labels_of_the_version_it_replaces(secretsmanager):
    v1 = version_of(secretsmanager, "AWSCURRENT")
    secretsmanager.update_secret_version_stage(
        SecretId=SECRET, VersionStage="reviewed", MoveToVersionId=v1
    )
    put(secretsmanager, "v2")

    assert labels(secretsmanager) == {"v1": ["AWSPREVIOUS", "reviewed"], "v2": ["AWSCURRENT"]}


def test_a_label_named_in_a_put_leaves_the_version_that_had_it(secretsmanager):
    put(secretsmanager, "v2", "AWSPENDING")
    put(secretsmanager, "v3", "AWSCURRENT", "AWSPENDING")

    assert labels(secretsmanager) == {"v1": ["AWSPREVIOUS"], "v3": ["AWSCURRENT", "AWSPENDING"]}


def test_moving_a_label_another_version_carries_needs_that_version_named(secretsmanager):
    put(secretsmanager, "v2", "AWSPENDING")
    v1 = version_of(secretsmanager, "AWSCURRENT")

    with pytest.raises(ClientError) as refused:
        secretsmanager.update_secret_version_stage(
            SecretId=SECRET, VersionStage="AWSPENDING", MoveToVersionId=v1
        )

    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    assert labels(secretsmanager) == {"v1": ["AWSCURRENT"], "v2": ["AWSPENDING"]}


def test_removing_a_label_from_a_version_without_it_is_refused(secretsmanager):
    pending = put(secretsmanager, "v2", "AWSPENDING")

    with pytest.raises(ClientError) as refused:
        secretsmanager.update_secret_version_stage(
            SecretId=SECRET,
            VersionStage="AWSCURRENT",
            MoveToVersionId=pending,
            RemoveFromVersionId=pending,
        )

    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"


def test_moving_awscurrent_again_to_where_it_is_changes_nothing(secretsmanager):
    finish_rotation(secretsmanager, "v2")
    before = labels(secretsmanager)
    current = version_of(secretsmanager, "AWSCURRENT")

    secretsmanager.update_secret_version_stage(
        SecretId=SECRET, VersionStage="AWSCURRENT", MoveToVersionId=current
    )

    assert labels(secretsmanager) == before
