"""Reading Kion API keys from Secrets Manager, as the watch does once per installation."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from ses_smtp_rotator.functions.services.secrets_store import KionApiKeys


@pytest.fixture
def secretsmanager(aws: None) -> Any:
    return boto3.client("secretsmanager")


def request_handlers(client: Any) -> int:
    """How many handlers run on each GetSecretValue request this client sends."""
    lookup = client.meta.events._emitter._handlers
    return len(list(lookup.prefix_search("request-created.secrets-manager.GetSecretValue")))


def test_readers_made_one_per_installation_leave_the_shared_client_as_it_was(
    secretsmanager: Any,
) -> None:
    for number in range(3):
        secretsmanager.create_secret(
            Name=f"kion{number}/kion-api-key", SecretString=f"key-{number}"
        )
    KionApiKeys(0, secretsmanager=secretsmanager).api_key("kion0/kion-api-key")
    handlers = request_handlers(secretsmanager)

    read = [
        KionApiKeys(0, secretsmanager=secretsmanager).api_key(f"kion{number}/kion-api-key")
        for number in range(3)
    ]

    assert read == ["key-0", "key-1", "key-2"]
    assert request_handlers(secretsmanager) == handlers


def test_a_reader_without_a_cache_reads_the_key_again_each_time(secretsmanager: Any) -> None:
    secretsmanager.create_secret(Name="kion/kion-api-key", SecretString="first")
    cached, uncached = KionApiKeys(60, secretsmanager), KionApiKeys(0, secretsmanager)
    assert cached.api_key("kion/kion-api-key") == "first"

    secretsmanager.put_secret_value(SecretId="kion/kion-api-key", SecretString="renewed")

    assert cached.api_key("kion/kion-api-key") == "first"
    assert uncached.api_key("kion/kion-api-key") == "renewed"
    assert cached.api_key("kion/kion-api-key", fresh=True) == "renewed"


def test_a_new_reader_reads_again_what_an_earlier_one_cached(secretsmanager: Any) -> None:
    secretsmanager.create_secret(Name="kion/kion-api-key", SecretString="first")
    assert KionApiKeys(60, secretsmanager).api_key("kion/kion-api-key") == "first"

    secretsmanager.put_secret_value(SecretId="kion/kion-api-key", SecretString="renewed")

    assert KionApiKeys(60, secretsmanager).api_key("kion/kion-api-key") == "renewed"
