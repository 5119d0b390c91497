"""The watch deletes a retired key once its rollback window has passed, and only when every
condition still holds right before the delete."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from watch_world import WatchedWorld

from ses_smtp_rotator.functions.retired_keys import RETIRED_TAG_PREFIX, RetiredKey


def rotated(watched: WatchedWorld) -> tuple[str, str]:
    """One rotation: returns (the retired key, the new AWSCURRENT key)."""
    replaced = watched.smtp.current()["username"]
    watched.smtp.rotate()
    return replaced, watched.smtp.current()["username"]


def test_a_key_inside_its_window_is_kept_inactive_and_reported(watched: WatchedWorld) -> None:
    replaced, new_key = rotated(watched)

    [health] = watched.watch().run(now=watched.kion_now()).checked

    assert watched.smtp.key_statuses() == {new_key: "Active", replaced: "Inactive"}
    assert "retired_key_deletion" not in health.checks
    [retired] = health.retired_keys
    assert retired["access_key_id"] == replaced
    assert retired["status"] == "Inactive"
    assert retired["origin"] == "made"
    assert "deleted after" in health.checks["retired_keys"].summary
    assert health.current_key_last_used  # information only, whatever IAM recorded


def test_a_key_whose_window_passed_is_deleted_and_its_record_dropped(
    watched: WatchedWorld,
) -> None:
    replaced, new_key = rotated(watched)
    watched.smtp.backdate_retirements()

    [health] = watched.watch().run(now=watched.kion_now()).checked

    assert watched.smtp.key_statuses() == {new_key: "Active"}
    assert health.retired_keys_deleted == [replaced]
    assert not any(tag.startswith(RETIRED_TAG_PREFIX) for tag in watched.smtp.tags())
    assert watched.smtp.converged()


def test_an_adopted_key_is_deleted_by_the_watch_only_after_its_window(
    make_watched: Callable[..., WatchedWorld],
) -> None:
    watched = make_watched()
    watched.smtp.edit_current(username="", password="")  # the first rotation adopts Kion's key
    hand_made = watched.smtp.kion_credential()[0]
    watched.smtp.rotate()
    assert watched.smtp.retired_keys()[hand_made].adopted

    watched.watch().run(now=watched.kion_now())
    assert watched.smtp.key_statuses()[hand_made] == "Inactive"
    watched.smtp.backdate_retirements()
    watched.watch().run(now=watched.kion_now())

    assert hand_made not in watched.smtp.key_statuses()
    watched.hook.wait_idle(timeout=30)
    watched.hook.uninstall()


def test_a_key_reactivated_by_hand_is_not_deleted(watched: WatchedWorld) -> None:
    replaced, _ = rotated(watched)
    watched.smtp.backdate_retirements()
    watched.smtp.iam.update_access_key(
        UserName=watched.smtp.installation.iam_user_name, AccessKeyId=replaced, Status="Active"
    )

    [health] = watched.watch().run(now=watched.kion_now()).checked

    assert watched.smtp.key_statuses()[replaced] == "Active"
    assert "Active again" in health.checks["retired_key_deletion"].summary


def test_a_key_kion_was_pointed_back_at_is_not_deleted(watched: WatchedWorld) -> None:
    replaced, _ = rotated(watched)
    watched.smtp.backdate_retirements()
    watched.kion.app_config["smtp_username"] = replaced  # someone rolled Kion back by hand

    [health] = watched.watch().run(now=watched.kion_now()).checked

    assert replaced in watched.smtp.key_statuses()
    assert f"Kion is configured with {replaced}" in health.checks["retired_key_deletion"].summary


def test_a_record_naming_another_consumers_key_never_deletes_it(
    make_watched: Callable[..., WatchedWorld],
) -> None:
    watched = make_watched(iam_user_dedicated=False)
    user = watched.smtp.installation.iam_user_name
    others = watched.smtp.iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    watched.smtp.iam.update_access_key(UserName=user, AccessKeyId=others, Status="Inactive")
    forged = RetiredKey(others, datetime.now(UTC) - timedelta(days=30), False, None)
    watched.smtp.secretsmanager.tag_resource(
        SecretId=watched.smtp.secret_id,
        Tags=[{"Key": forged.tag_key, "Value": forged.tag_value()}],
    )

    [health] = watched.watch().run(now=watched.kion_now()).checked

    assert others in watched.smtp.key_statuses()
    assert "may serve another consumer" in health.checks["retired_key_deletion"].summary
    watched.hook.wait_idle(timeout=30)
    watched.hook.uninstall()
