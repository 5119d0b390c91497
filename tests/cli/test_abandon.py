"""``ses-smtp-rotator abandon``: a stuck rotation given up only once that is safe, and the
rotation after it, followed step by step as ``status`` advises."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from cli_world import age_left_records, installation, leave_rotation_pending, run_cli, settle
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import iam_backends
from moto.secretsmanager.models import secretsmanager_backends

from ses_smtp_rotator.cli.exit_codes import EXIT_FAILED, EXIT_IN_PROGRESS, EXIT_OK
from ses_smtp_rotator.demo.environment import REGION

# The demo's function configuration cannot be read, so `abandon` takes the stack's default
# timeout, 900 s: its quiet period is 960 s.
QUIET_PERIOD = 960


def current_value(world) -> dict[str, str]:
    value = world.client("secretsmanager").get_secret_value(
        SecretId=installation(world).secret_arn, VersionStage="AWSCURRENT"
    )
    return json.loads(value["SecretString"])


def age_key(access_key_id: str, seconds: float) -> None:
    for backend in iam_backends[DEFAULT_ACCOUNT_ID].values():
        for key in backend.access_keys.values():
            if key.access_key_id == access_key_id:
                key.create_date -= timedelta(seconds=seconds)


def age_version(world, version_id: str, seconds: float) -> None:
    secret = secretsmanager_backends[DEFAULT_ACCOUNT_ID][REGION].secrets[
        installation(world).secret_arn
    ]
    secret.versions[version_id]["createdate"] -= int(seconds)


def rotation_that_died_after_create_secret(world, seconds_ago: float) -> tuple[str, str]:
    """What a rotation whose function died right after createSecret leaves: a second access key
    (the user is at IAM's two-key limit), a pending version holding it, and createSecret's last
    log record, all ``seconds_ago``. Returns the version id and the new key's id."""
    user = installation(world).iam_user_name
    key_id = world.client("iam").create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    age_key(key_id, seconds_ago)
    version_id = leave_rotation_pending(
        world,
        made_ago=seconds_ago,
        records=[(seconds_ago, "INFO", "createSecret", "Step finished")],
        changed={"username": key_id},
    )
    return version_id, key_id


def advised(output: str, command: str) -> list[str]:
    """The arguments of the ``ses-smtp-rotator COMMAND ...`` line the output advises."""
    found = re.search(rf"ses-smtp-rotator ({command} [^\s`)]+(?: --wait)?)", output)
    assert found, output
    return found.group(1).split()


def test_status_advice_leads_from_a_stuck_rotation_to_a_converged_one(world, capsys):
    name = installation(world).secret_name
    if not current_value(world).get("username"):
        assert run_cli(capsys, "rotate", name, "--wait", "--poll", "0.1")[0] == EXIT_OK
        assert world.hook.wait_idle(timeout=10)
        age_key(current_value(world)["username"], 3600)
        settle(world)  # the key it replaced has passed its rollback window and is gone
    kept_key = current_value(world)["username"]
    # 935 s: past the function's timeout plus 30 s (where status used to offer giving it up),
    # short of its quiet period, so the key it made may not be deleted yet.
    version, spare_key = rotation_that_died_after_create_secret(world, seconds_ago=935)

    code, output = run_cli(capsys, "status", name)
    assert code == EXIT_IN_PROGRESS, output
    assert "is in progress" in output
    assert "ses-smtp-rotator abandon" not in output

    code, output = run_cli(capsys, "abandon", name, "--yes")
    assert code == EXIT_IN_PROGRESS, output
    assert "Not yet" in output
    assert "Nothing changed." in output
    stages = world.client("secretsmanager").describe_secret(SecretId=name)["VersionIdsToStages"]
    assert "AWSPENDING" in stages[version]

    # Time passes beyond the quiet period.
    age_left_records(world, version, 30)
    age_key(spare_key, 30)
    age_version(world, version, 30)

    code, output = run_cli(capsys, "status", name)
    assert code == EXIT_FAILED, output
    give_up = advised(output, "abandon")
    assert give_up == ["abandon", name]

    code, output = run_cli(capsys, *give_up, "--yes")
    assert code == EXIT_OK, output
    assert f"Gave up the rotation to version {version}" in output
    rotate_again = advised(output, "rotate")
    assert rotate_again == ["rotate", name, "--wait"]

    code, output = run_cli(capsys, *rotate_again, "--poll", "0.1")
    assert code == EXIT_OK, output
    assert world.hook.wait_idle(timeout=10)
    new_key = current_value(world)["username"]
    assert new_key not in (kept_key, spare_key)
    assert world.kion_server.app_config["smtp_username"] == new_key
    listed = world.client("iam").list_access_keys(UserName=installation(world).iam_user_name)
    assert spare_key not in {key["AccessKeyId"] for key in listed["AccessKeyMetadata"]}


def test_abandon_with_nothing_unfinished_changes_nothing(world, capsys):
    code, output = run_cli(capsys, "abandon", installation(world).secret_name, "--yes")

    assert code == EXIT_OK
    assert "Nothing to give up" in output


def test_abandon_without_yes_and_without_a_terminal_asks_for_it(world, capsys):
    version = leave_rotation_pending(
        world, made_ago=2000, records=[(1900, "INFO", "createSecret", "Step finished")]
    )

    code, output = run_cli(capsys, "abandon", installation(world).secret_name)

    assert code != EXIT_OK
    assert "pass --yes" in output
    stages = world.client("secretsmanager").describe_secret(
        SecretId=installation(world).secret_arn
    )["VersionIdsToStages"]
    assert "AWSPENDING" in stages[version]


def test_a_stuck_kion_api_key_renewal_is_given_up_and_may_start_again(world, capsys):
    key_secret = installation(world).kion_api_key_secret_arn
    version = leave_rotation_pending(world, made_ago=2000, secret_arn=key_secret)

    code, output = run_cli(capsys, "abandon", installation(world).secret_name, "--yes")

    assert code == EXIT_OK, output
    assert f"Gave up the Kion API key renewal to version {version}" in output
    assert "The next renewal may start now" in output
    stages = world.client("secretsmanager").describe_secret(SecretId=key_secret)
    assert "AWSPENDING" not in stages["VersionIdsToStages"].get(version, [])
