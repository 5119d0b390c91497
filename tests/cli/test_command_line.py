"""The command line's own manners: a typo'd flag, AWS that cannot be asked, the Kion API key
secret named where an installation is meant, Ctrl-C while following a rotation."""

from __future__ import annotations

import json
import re

import pytest
from cli_world import installation, run_cli, when_printed

from ses_smtp_rotator.cli.exit_codes import EXIT_INTERRUPTED, EXIT_SETUP, EXIT_USAGE

FAST = ("--poll", "0.1")


def run_to_exit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``run_cli`` for command lines argparse refuses (it exits)."""
    with pytest.raises(SystemExit) as exited:
        run_cli(capsys, *args)
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out + captured.err


def test_a_typod_flag_gets_the_subcommands_usage_and_the_nearest_flag(capsys):
    code, output = run_to_exit(capsys, "status", "kion", "--jsn")
    assert code == EXIT_USAGE
    assert output.startswith("usage: ses-smtp-rotator status ")
    assert "unrecognized arguments: --jsn (--jsn: did you mean --json?)" in output


def test_a_flag_of_no_likeness_is_refused_without_a_guess(capsys):
    code, output = run_to_exit(capsys, "rotate", "kion", "--frobnicate")
    assert code == EXIT_USAGE
    assert "unrecognized arguments: --frobnicate" in output
    assert "did you mean" not in output


@pytest.mark.parametrize(
    "secret",
    [
        "kion/ses-smtp-credential",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:kion/ses-smtp-credential-AbCdEf",
    ],
    ids=["name", "ARN"],
)
def test_no_credentials_reads_the_same_for_a_name_and_an_arn(secret, capsys, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    code, output = run_cli(capsys, "status", secret)
    assert code == EXIT_SETUP
    assert output.startswith("error: No AWS credentials were found.\n  Fix: ")


@pytest.mark.parametrize(
    "secret",
    [
        "kion/ses-smtp-credential",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:kion/ses-smtp-credential-AbCdEf",
    ],
    ids=["name", "ARN"],
)
def test_unreachable_aws_reads_the_same_for_a_name_and_an_arn(secret, capsys, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "demo")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "demo")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    code, output = run_cli(capsys, "status", secret)
    assert code == EXIT_SETUP
    assert f"secretsmanager:DescribeSecret on secret {secret} failed before AWS answered" in output
    assert "Fix: Check your network path to the AWS API" in output


def test_set_kion_key_on_the_api_key_secret_itself_names_the_installation_secret(world, capsys):
    key_secret = installation(world).kion_api_key_secret_arn
    code, output = run_cli(capsys, "set-kion-key", key_secret)
    assert code == EXIT_SETUP
    assert "is a Kion API key secret, not an installation secret" in output
    assert "Name the installation secret whose kion_api_key_secret_id is this secret" in output
    assert "ses_region" not in output  # no advice that would damage the key's secret


def test_ctrl_c_while_waiting_says_how_to_follow_again(world, capsys):
    secret = installation(world).secret_name

    def interrupt() -> None:
        raise KeyboardInterrupt

    with when_printed("createSecret", interrupt):
        code, output = run_cli(capsys, "rotate", secret, "--wait", *FAST)
    assert code == EXIT_INTERRUPTED
    assert "Interrupted. Whatever was started in AWS goes on." in output
    assert f"Follow it again: ses-smtp-rotator rotate {secret} --wait" in output
    assert f"ses-smtp-rotator status {secret}" in output


def test_one_unit_style_in_text_and_numbers_as_numbers_in_json(world, capsys):
    secret = installation(world).secret_name
    code, output = run_cli(capsys, "rotate", secret, "--wait", *FAST)
    assert code == 0, output
    _, output = run_cli(capsys, "status", secret, "--no-watch")
    spans = re.findall(r"\((\d+ \S+) ago\)", output)
    assert spans, output
    assert all(re.fullmatch(r"\d+ (s|min|h|d)", found) for found in spans), spans
    _, output = run_cli(capsys, "status", secret, "--no-watch", "--json")
    document = json.loads(output)
    assert isinstance(document["key_age_days"], float)
    assert isinstance(document["function_timeout_seconds"], int | float)
