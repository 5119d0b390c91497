"""The first rotation at the first deploy: once ``set-kion-key`` has stored Kion's key, it starts
the installation's first rotation and follows it, and ``status`` shows the result."""

from __future__ import annotations

import io
import json

import pytest
from cli_world import installation, run_cli

from ses_smtp_rotator.demo import DemoEnvironment


def test_set_kion_key_starts_the_first_rotation_and_follows_it(
    world: DemoEnvironment, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    deployed = installation(world)
    assert world.kion is not None
    monkeypatch.setattr("sys.stdin", io.StringIO(world.kion.api_key + "\n"))

    code, output = run_cli(capsys, "set-kion-key", deployed.secret_name, "--rotate")

    assert code == 0, output
    assert "Starting the first rotation: it adopts the key Kion sends with." in output
    assert "✓ Rotation finished" in output
    current = json.loads(
        world.client("secretsmanager").get_secret_value(
            SecretId=deployed.secret_arn, VersionStage="AWSCURRENT"
        )["SecretString"]
    )
    assert current["username"]
    assert current["username"] != deployed.hand_made_key_id
    assert world.kion.smtp_credential()[0] == current["username"]
    code, output = run_cli(capsys, "status", deployed.secret_name)
    assert code == 0, output
