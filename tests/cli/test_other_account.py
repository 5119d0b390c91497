"""The command line for an installation whose IAM user is in another account, with the
operator's credentials in the deployment account: ``rotate`` and ``rollback`` go through the
rotation function and ``status`` asks the watch, which reach the user through the access role."""

from __future__ import annotations

import re
from collections.abc import Iterator

import boto3
import pytest
from cli_world import FUNCTION_ENVIRONMENT, assert_no_secret, installation, run_cli
from moto.iam.models import iam_backends

from ses_smtp_rotator.cli.exit_codes import EXIT_OK, EXIT_UNCHECKED
from ses_smtp_rotator.demo import DemoEnvironment
from ses_smtp_rotator.demo.environment import WATCH_NAME

SES_ACCOUNT = "444455556666"


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoEnvironment]:
    with DemoEnvironment(
        propagation_delay=0.3,
        function_environment=FUNCTION_ENVIRONMENT,
        rotation_retries=0,
        with_watch=True,
        ses_account=SES_ACCOUNT,
    ) as environment:
        yield environment


def user_keys(account: str, user_name: str) -> dict[str, str]:
    users = iam_backends[account]["aws"].users
    user = users.get(user_name)
    return {key.access_key_id: key.status for key in user.access_keys} if user else {}


def test_rotate_and_status_reach_the_user_in_the_other_account(
    world: DemoEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    name = installation(world).secret_name
    user_name = installation(world).iam_user_name

    code, output = run_cli(capsys, "rotate", name, "--wait", "--poll", "0.1")
    assert code == EXIT_OK, output
    assert world.hook is not None
    assert world.hook.wait_idle(timeout=10)

    code, output = run_cli(capsys, "status", name)

    output = re.sub(r" +", " ", output)
    assert code == EXIT_OK, output
    assert f"Kion's side checked by the watch {WATCH_NAME}" in output
    assert "✓ Access key" in output
    assert world.kion is not None
    kion_key = world.kion.smtp_credential()[0]
    assert user_keys(SES_ACCOUNT, user_name)[kion_key] == "Active"
    assert user_keys("123456789012", user_name) == {}
    assert boto3.client("iam").list_users()["Users"] == []  # none in the deployment account
    assert_no_secret(output, world)


def test_status_without_the_watch_says_where_the_user_is_and_how_to_check_it(
    world: DemoEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    name = installation(world).secret_name

    code, output = run_cli(capsys, "status", name, "--no-watch")

    output = re.sub(r" +", " ", output)
    assert code == EXIT_UNCHECKED, output
    assert f"in account {SES_ACCOUNT}" in output
    assert "without --no-watch" in output
