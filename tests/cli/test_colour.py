"""Colour on a terminal, honouring NO_COLOR; plain text into files and pipes."""

from __future__ import annotations

import sys

import pytest
from cli_world import installation, run_cli

GREEN, RED = "\033[32m", "\033[1;31m"


@pytest.fixture
def terminal(capsys, monkeypatch):
    """capsys, its streams taken for terminals once the test runs ``terminal.begin()``."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")

    def begin() -> None:  # in the test's own phase, where capsys holds sys.stdout
        monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
        monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)

    capsys.begin = begin
    return capsys


def test_on_a_terminal_the_marks_are_coloured(world, terminal):
    terminal.begin()
    code, output = run_cli(
        terminal, "rotate", installation(world).secret_name, "--wait", "--poll", "0.1"
    )
    assert code == 0, output
    assert f"{GREEN}✓\033[0m Rotation finished" in output, repr(output[-300:])


def test_no_color_keeps_a_terminal_plain(world, terminal, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    terminal.begin()
    code, output = run_cli(
        terminal, "rotate", installation(world).secret_name, "--wait", "--poll", "0.1"
    )
    assert code == 0, output
    assert "\033[" not in output
    assert "✓ Rotation finished" in output


def test_errors_are_red_on_a_terminal(terminal, monkeypatch):
    terminal.begin()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "demo")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "demo")
    code, output = run_cli(terminal, "status", "kion", "--region", "us-east-1")
    assert code == 5
    assert output.startswith(f"{RED}error:\033[0m ")


def test_output_into_a_pipe_is_plain(world, capsys):
    code, output = run_cli(
        capsys, "rotate", installation(world).secret_name, "--wait", "--poll", "0.1"
    )
    assert code == 0, output
    assert "\033[" not in output
