"""The watch's settings from its environment, and the installation a secret belongs to."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ses_smtp_rotator.functions.installation_metrics import installation_name
from ses_smtp_rotator.functions.watch.daily_watch import WatchConfig


@pytest.mark.parametrize(
    ("secret_id", "installation"),
    [
        ("ses-smtp-rotator/SesSmtpRotator/smtp/prod", "prod"),
        (
            "arn:aws:secretsmanager:us-east-1:111122223333:secret:"
            "ses-smtp-rotator/SesSmtpRotator/smtp/prod-east-AbCdEf",
            "prod-east",
        ),
        ("kion/ses-smtp-credential", "kion/ses-smtp-credential"),
        (
            "arn:aws-us-gov:secretsmanager:us-gov-west-1:111122223333:secret:kion-gov-a1B2c3",
            "kion-gov",
        ),
    ],
)
def test_the_installation_is_named_as_the_stack_names_it(secret_id: str, installation: str) -> None:
    assert installation_name(secret_id) == installation


def test_the_stack_s_settings_are_read() -> None:
    config = WatchConfig.from_environment(
        {
            "DEPLOYMENT_NAME": "prod",
            "INSTALLATION_SECRET_PREFIX": "ses-smtp-rotator/prod/smtp/",
            "ROTATION_FUNCTION_TIMEOUT_SECONDS": "600",
            "ROTATION_MAX_AGE_DAYS": "37.01",
            "ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:111122223333:alerts",
            "WATCH_CONCURRENCY": "4",
        }
    )
    assert config.limits.function_timeout == timedelta(seconds=600)
    assert config.limits.rotation_max_age == timedelta(days=37.01)
    assert config.limits.kion_key_renew_after == timedelta(days=30)
    assert config.concurrency == 4
    assert WatchConfig.from_environment({}).limits.rotation_max_age is None  # no schedule known


@pytest.mark.parametrize("name", ["ROTATION_FUNCTION_TIMEOUT_SECONDS", "ROTATION_MAX_AGE_DAYS"])
@pytest.mark.parametrize("value", ["soon", "0", "-3"])
def test_a_bad_setting_is_named_with_its_fix(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name) as refused:
        WatchConfig.from_environment({name: value})
    assert "Fix: " in str(refused.value)
