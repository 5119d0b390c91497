"""No secret access key, SMTP password or Kion API key reaches the function's output."""

import logging

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import iam_backends

from ses_smtp_rotator.functions.telemetry import SERVICE
from ses_smtp_rotator.local.rotation_service import RotationStepError


def secret_values(world) -> set[str]:
    keys = iam_backends[DEFAULT_ACCOUNT_ID]["aws"].access_keys.values()
    values = {key.secret_access_key for key in keys}
    for version_id in world.stages():
        fields = world.version_fields(VersionId=version_id)
        values.add(fields["password"])
    values.update(world.kion.api_keys.values())
    values.add(world.kion.app_config["smtp_password"])
    return {value for value in values if value}


def leaks(text: str, secrets: set[str]) -> set[str]:
    """Every secret of which the whole value or any 8-character piece appears in ``text``."""
    return {
        secret[:4] + "…"
        for secret in secrets
        if any(secret[i : i + 8] in text for i in range(len(secret) - 7))
    }


def test_a_rotation_and_its_failures_log_no_secret(
    world, function_logs, capfd, caplog, monkeypatch
):
    # The most verbose settings an operator could choose, for the function and the libraries.
    caplog.set_level(logging.DEBUG)
    function_logger = logging.getLogger(SERVICE)
    monkeypatch.setattr(function_logger, "level", function_logger.level)  # restored after
    function_logger.setLevel(logging.DEBUG)
    seen = secret_values(world)
    token = world.rotate()
    seen |= secret_values(world)
    # A failing rotation too: Kion refuses the API key, so an error and a traceback are logged.
    world.backdate_retirements()
    second = world.start()
    world.step("createSecret", second)
    world.kion.fail_requests(401, count=None)
    monkeypatch.setenv("KION_RETRIES", "0")
    with pytest.raises(RotationStepError) as raised:
        world.step("setSecret", second)
    failures = [raised.value]
    seen |= secret_values(world)

    captured = capfd.readouterr()
    text = "\n".join(
        [function_logs.getvalue(), captured.out, captured.err, caplog.text]
        + [f"{failure} {failure.error!r} {failure.error.fix}" for failure in failures]
    )
    assert token in text  # the output was captured at all
    assert '"level":"ERROR"' in function_logs.getvalue()
    assert "SesAcceptWaitSeconds" in captured.out  # the metrics
    assert "rejected the App API key" in text
    assert not leaks(text, seen)
