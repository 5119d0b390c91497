"""``status`` asks the deployed watch for Kion's side: the operator's identity never reads the
Kion API key, and the watch's findings (a hand-edited Kion, an expired key) decide the exit code."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from cli_world import FUNCTION_ENVIRONMENT, assert_no_secret, installation, run_cli, settle

from ses_smtp_rotator.cli.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_UNCHECKED
from ses_smtp_rotator.demo import DemoEnvironment
from ses_smtp_rotator.demo.environment import WATCH_NAME


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoEnvironment]:
    with DemoEnvironment(
        propagation_delay=0.3,
        function_environment=FUNCTION_ENVIRONMENT,
        rotation_retries=0,
        with_watch=True,
    ) as environment:
        yield environment


@pytest.fixture
def secrets_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SecretIds of every GetSecretValue the command line's sessions send."""
    read: list[str] = []
    original = boto3.Session

    def session(*args: Any, **kwargs: Any) -> boto3.Session:
        made = original(*args, **kwargs)
        made.events.register(
            "provide-client-params.secretsmanager.GetSecretValue",
            lambda params, **_: read.append(params["SecretId"]),
        )
        return made

    monkeypatch.setattr("ses_smtp_rotator.cli.aws_access.boto3.Session", session)
    return read


def squash(text: str) -> str:
    return re.sub(r" +", " ", text)


def without_numbers(text: str) -> str:
    return re.sub(r"\d+(\.\d+)?", "N", text)


def test_status_learns_kions_side_from_the_watch_without_reading_the_kion_key(
    world: DemoEnvironment, secrets_read: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    name = installation(world).secret_name
    code, output = run_cli(capsys, "rotate", name, "--wait", "--poll", "0.1")
    assert code == EXIT_OK, output
    assert world.hook is not None
    assert world.hook.wait_idle(timeout=10)
    secrets_read.clear()

    code, output = run_cli(capsys, "status", name)

    output = squash(output)
    assert code == EXIT_OK, output
    assert f"Kion's side checked by the watch {WATCH_NAME}" in output
    assert "✓ Kion sends with" in output
    assert "✓ Kion's SMTP host" in output
    assert "✓ Kion API key Kion accepts the key" in output
    assert "✓ SES SMTP" in output  # proven where the function sends from
    assert "✓ Access key" in output
    assert "✓ Rotation age last rotated" in output
    assert secrets_read  # the installation secret, read here
    assert installation(world).kion_api_key_secret_arn not in secrets_read
    assert_no_secret(output, world)


def test_a_hand_edited_kion_found_by_the_watch_fails_status(
    world: DemoEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    assert world.kion is not None
    name = installation(world).secret_name
    if not json.loads(run_cli(capsys, "status", name, "--json")[1])["access_key_id"]:
        # A credential to compare Kion with (another worker may have this module's first test).
        code, output = run_cli(capsys, "rotate", name, "--wait", "--poll", "0.1")
        assert code == EXIT_OK, output
        settle(world)
    username, password = world.kion.smtp_credential()
    world.kion.set_smtp_credential("AKIAHANDEDITED000000", password or "")
    try:
        code, output = run_cli(capsys, "status", installation(world).secret_name, "--json")
    finally:
        world.kion.set_smtp_credential(username, password or "")
    assert code == EXIT_FAILED, output
    assert '"kion_checked_by": "ses-smtp-rotator-demo-watch"' in output
    assert "AKIAHANDEDITED000000" in output


def test_a_watch_that_cannot_be_asked_leaves_kion_unchecked_with_the_fix(
    world: DemoEnvironment, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SES_SMTP_ROTATOR_WATCH_FUNCTION", "no-such-watch")
    code, output = run_cli(capsys, "status", installation(world).secret_name)
    output = squash(output)
    assert code == EXIT_UNCHECKED, output
    assert "could not ask the watch no-such-watch" in output
    assert "Fix: Check that the watch function no-such-watch exists" in output


@pytest.mark.parametrize("edit", ["none", "hand-edited-kion", "inactive-key"])
def test_the_watch_and_this_machine_find_the_same(
    world: DemoEnvironment, capsys: pytest.CaptureFixture[str], edit: str
) -> None:
    """One code path: the findings asked of the watch and those made here with --no-watch agree
    check by check, healthy or not."""
    assert world.kion is not None
    assert world.installation is not None
    name = installation(world).secret_name
    code, output = run_cli(capsys, "rotate", name, "--wait", "--poll", "0.1")  # a credential
    assert code == EXIT_OK, output
    assert world.hook is not None
    assert world.hook.wait_idle(timeout=10)
    username, password = world.kion.smtp_credential()
    iam = boto3.client("iam")
    if edit == "hand-edited-kion":
        world.kion.set_smtp_credential("AKIAHANDEDITED000000", password or "")
    if edit == "inactive-key":
        iam.update_access_key(
            UserName=world.installation.iam_user_name, AccessKeyId=username, Status="Inactive"
        )
    try:
        watch_code, from_watch = run_cli(capsys, "status", name, "--json")
        here_code, from_here = run_cli(
            capsys, "status", name, "--json", "--no-watch", "--check-smtp"
        )
    finally:
        world.kion.set_smtp_credential(username, password or "")
        iam.update_access_key(
            UserName=world.installation.iam_user_name, AccessKeyId=username, Status="Active"
        )

    watch_report, here_report = json.loads(from_watch), json.loads(from_here)
    assert watch_report["kion_checked_by"] == WATCH_NAME
    assert here_report["kion_checked_by"] is None
    assert watch_code == here_code, (from_watch, from_here)
    assert watch_report["checks"].keys() == here_report["checks"].keys()
    for check, finding in watch_report["checks"].items():
        here = here_report["checks"][check]
        assert here["ok"] == finding["ok"], check
        # The two runs happen seconds apart: ages and days left may differ, nothing else.
        assert without_numbers(here["summary"]) == without_numbers(finding["summary"]), check
    expected_failing = {
        "none": [],
        "hand-edited-kion": ["kion"],
        "inactive-key": ["access_key", "ses"],
    }
    assert watch_report["problems"] == expected_failing[edit]
