"""One notification per incident: the watch tells a failing installation once, repeats it at
most once a day marked as a repeat, and tells its recovery once."""

from __future__ import annotations

from datetime import timedelta

import boto3
from moto.core import DEFAULT_ACCOUNT_ID
from watch_world import WatchedWorld

from ses_smtp_rotator.functions.watch.incidents import incident_parameter_prefix

HAND_EDITED = "AKIAHANDEDITED000000"


def test_a_failing_installation_is_told_once_then_daily_as_a_repeat_then_its_recovery(
    watched: WatchedWorld,
) -> None:
    now = watched.kion_now()
    watched.kion.app_config["smtp_username"] = HAND_EDITED
    watch = watched.watch()
    watch.watch_one(watched.smtp.secret_id, budget=timedelta(seconds=120), now=now)
    # The same message delivered again, and a check later that day: nothing more is told.
    watch.watch_one(watched.smtp.secret_id, budget=timedelta(seconds=120), now=now)
    watch.run(now=now + timedelta(hours=6))
    [first] = watched.alerts()
    assert first.startswith("[new] ")

    watched.watch().run(now=now + timedelta(days=1))
    repeat = watched.alerts()[-1]
    assert len(watched.alerts()) == 2
    assert repeat.startswith("[repeat] ")
    assert f"the incident opened at {now:%Y-%m-%d %H:%M} UTC" in repeat

    watched.kion.app_config["smtp_username"] = watched.smtp.current()["username"]
    watched.watch().run(now=now + timedelta(days=1, hours=1))
    watched.watch().run(now=now + timedelta(days=2))
    assert len(watched.alerts()) == 3
    resolved = watched.alerts()[-1]
    assert resolved.startswith("[resolved] Kion installation prod/ses-smtp-credential is healthy")
    assert "kion failing" in resolved


def test_a_notice_names_account_region_installation_cause_fix_command_and_console(
    watched: WatchedWorld,
) -> None:
    watched.kion.app_config["smtp_username"] = HAND_EDITED
    watched.watch().run(now=watched.kion_now())
    [notice] = watched.alerts()
    assert "Kion installation prod/ses-smtp-credential" in notice
    assert f"Account {DEFAULT_ACCOUNT_ID}, region us-east-1" in notice
    assert HAND_EDITED in notice
    assert "Fix: " in notice
    assert "Run: ses-smtp-rotator status prod/ses-smtp-credential" in notice
    assert (
        "Console: https://console.aws.amazon.com/secretsmanager/secret?"
        "name=prod%2Fses-smtp-credential&region=us-east-1"
    ) in notice
    assert watched.smtp.current()["password"] not in notice


def test_other_failing_checks_are_told_as_a_changed_incident(watched: WatchedWorld) -> None:
    now = watched.kion_now()
    watched.kion.app_config["smtp_username"] = HAND_EDITED
    watched.watch().run(now=now)
    watched.age_kion_key(31)  # now the Kion key has expired too
    watched.watch().run(now=now + timedelta(hours=1))
    assert [notice.split(" ", 1)[0] for notice in watched.alerts()] == ["[new]", "[changed]"]
    assert "set-kion-key" in watched.alerts()[-1]


def test_the_open_incident_is_one_parameter_removed_once_resolved(watched: WatchedWorld) -> None:
    ssm = boto3.client("ssm")
    prefix = incident_parameter_prefix("watched")
    watched.kion.app_config["smtp_username"] = HAND_EDITED
    watched.watch().run(now=watched.kion_now())
    [parameter] = ssm.get_parameters_by_path(Path=prefix, Recursive=True)["Parameters"]
    assert parameter["Name"] == f"{prefix}prod/ses-smtp-credential"
    assert '"checks": ["kion"]' in parameter["Value"]
    watched.kion.app_config["smtp_username"] = watched.smtp.current()["username"]
    watched.watch().run(now=watched.kion_now())
    assert ssm.get_parameters_by_path(Path=prefix, Recursive=True)["Parameters"] == []
