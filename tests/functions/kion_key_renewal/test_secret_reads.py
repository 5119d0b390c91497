"""The renewal reads its key secret no more often than each step needs (P4 of `make bench`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from kion_key_world import KeyRenewalWorld

from ses_smtp_rotator.functions.services import aws_clients as aws
from ses_smtp_rotator.local.rotation_service import STEPS


@contextmanager
def counting(operation: str) -> Iterator[Counter[str]]:
    """Count ``operation`` calls of the functions' Secrets Manager client, by SecretId."""
    client = aws.client("secretsmanager")
    counts: Counter[str] = Counter()

    def count(params: dict[str, str], **_: object) -> None:
        counts[params["SecretId"]] += 1

    event = f"provide-client-params.secrets-manager.{operation}"
    client.meta.events.register(event, count, unique_id="count-reads")
    try:
        yield counts
    finally:
        client.meta.events.unregister(event, unique_id="count-reads")


def test_each_step_describes_the_key_secret_once_and_finish_again_after_moving_awscurrent(
    renewal: KeyRenewalWorld,
) -> None:
    token = renewal.start()
    described = {}
    for step in STEPS:
        with counting("DescribeSecret") as counts:
            renewal.step(step, token)
        described[step] = counts[renewal.secret_id]
    # createSecret: its guard's read also names the key; finishSecret: the labels once more
    # after AWSCURRENT moved (Secrets Manager may leave AWSPENDING on it).
    assert described == {"createSecret": 1, "setSecret": 0, "testSecret": 1, "finishSecret": 2}
    assert renewal.current_works()
