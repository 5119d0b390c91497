"""``ses-smtp-rotator completion``: a completion script generated from the parser itself, tried
in a real bash."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from cli_world import run_cli

from ses_smtp_rotator.cli.exit_codes import EXIT_OK


def completions(script: str, *words: str) -> list[str]:
    """What bash offers after ``ses-smtp-rotator WORDS`` (the last word being completed)."""
    line = " ".join(("ses-smtp-rotator", *words))
    probe = (
        f"{script}\n"
        f"COMP_WORDS=(ses-smtp-rotator {' '.join(words)}); COMP_CWORD={len(words)}; "
        f"COMP_LINE='{line}'; COMP_POINT={len(line)}\n"
        "_shtab_ses_smtp_rotator; printf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    done = subprocess.run(
        ["bash", "--norc", "--noprofile"],
        input=probe,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completes_subcommands_and_their_options(capsys):
    code, script = run_cli(capsys, "completion", "bash")
    assert code == EXIT_OK
    assert "history" in completions(script, "hi")
    assert completions(script, "status", "--js") == ["--json"]
    assert "--dry-run" in completions(script, "rotate", "--d")


def test_zsh_gets_its_own_script(capsys):
    code, script = run_cli(capsys, "completion", "zsh")
    assert code == EXIT_OK
    assert script.startswith("#compdef ses-smtp-rotator")
