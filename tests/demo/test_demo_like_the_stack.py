"""The demo's world behaves like a deployed stack: ``list``, ``status --all`` and ``history``
work against it as they would against AWS (what ``make demo ARGS=--keep-running`` offers)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from ses_smtp_rotator.cli import main as cli
from ses_smtp_rotator.demo import DemoEnvironment
from ses_smtp_rotator.demo.environment import FUNCTION_TIMEOUT_SECONDS


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoEnvironment]:
    with DemoEnvironment(propagation_delay=0.3, with_watch=True) as environment:
        yield environment


@pytest.fixture
def operator(demo: DemoEnvironment, monkeypatch: pytest.MonkeyPatch) -> DemoEnvironment:
    for name, value in demo.aws_environment().items():
        monkeypatch.setenv(name, value)
    return demo


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_list_finds_the_installation_by_the_stacks_tags(operator, capsys):
    code, output = run(capsys, "list", "--json")
    assert code == 0, output
    [listed] = json.loads(output)
    assert listed["installation"] == "kion"
    assert listed["deployment"] == "demo"
    assert listed["secret_name"] == "kion/ses-smtp-credential"


def test_status_reads_the_functions_configuration_as_deployed(operator, capsys):
    _, output = run(capsys, "status", "kion/ses-smtp-credential", "--json")
    document = json.loads(output)
    assert document["function_timeout_seconds"] == FUNCTION_TIMEOUT_SECONDS
    assert "ResourceNotFoundException" not in output
    _, output = run(capsys, "status", "--all")
    assert "kion" in output


def test_history_tells_the_rotations_the_demo_ran(operator, capsys):
    operator.client("secretsmanager").rotate_secret(SecretId="kion/ses-smtp-credential")
    assert operator.hook is not None
    assert operator.hook.wait_idle(timeout=60)
    code, output = run(capsys, "history", "kion", "--json")
    assert code == 0, output
    document = json.loads(output)
    rotations = [r for r in document["rotations"] if r["kind"] == "rotation"]
    assert rotations[0]["outcome"] == "finished"


def test_make_demo_installs_only_what_the_demo_runs():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    wanted = {
        line.split("==")[0].split("[")[0].lower()
        for line in (root / "requirements-demo.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {"moto", "aiosmtpd", "trustme", "boto3", "aws-lambda-powertools"} <= wanted
    assert not wanted & {"aws-cdk-lib", "cdk-nag", "mutmut", "cfn-lint", "pytest", "ruff"}
    makefile = (root / "Makefile").read_text()
    assert "-r requirements-demo.txt" in makefile
    assert "\t$(DEMO_VENV)/bin/python -m ses_smtp_rotator.demo $(ARGS)" in makefile


def test_make_demo_installs_in_one_pip_run_without_compiling_what_the_demo_never_imports():
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    planned = subprocess.run(
        ["make", "--dry-run", "--always-make", ".venv-demo/.installed"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    assert "-m venv --without-pip .venv-demo" in planned  # no ensurepip when pip --python works
    installs = [line for line in planned.splitlines() if " install " in line]
    assert installs
    for line in installs:  # the fast way and the fallback: one pip run each
        assert "--no-compile" in line
        assert "-r requirements-demo.txt -e ." in line
