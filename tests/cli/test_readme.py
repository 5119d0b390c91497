"""The README stays true to the code: its commands, exit codes, secret schema, settings and the
errors its troubleshooting table explains."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from ses_smtp_rotator.cli import exit_codes
from ses_smtp_rotator.functions import config, errors
from ses_smtp_rotator.functions import installation_secret as settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


def test_it_opens_with_the_two_commands():
    opening = README.split("\n## ", 1)[0]
    commands = re.findall(r"^make (\w+)", opening, flags=re.M)
    assert commands[:2] == ["demo", "test"]


def test_the_make_targets_it_names_exist():
    makefile = (ROOT / "Makefile").read_text()
    for target in set(re.findall(r"`make (\w+)`", README)):
        assert re.search(rf"^{target}:", makefile, flags=re.M), target


def test_every_error_the_function_raises_is_in_the_troubleshooting_table():
    table = section("Troubleshooting")
    raised = [
        name
        for name, kind in inspect.getmembers(errors, inspect.isclass)
        if issubclass(kind, errors.RotationError) and kind is not errors.RotationError
    ]
    missing = [name for name in raised if f"| `{name}` |" not in table]
    assert not missing


def test_every_exit_code_is_in_the_readme_and_the_help():
    table = section("Operating with the command line")
    codes = {name: value for name, value in vars(exit_codes).items() if name.startswith("EXIT_")}
    assert len(codes) >= 8
    for name, code in codes.items():
        assert re.search(rf"^\| {code} \| ", table, flags=re.M), name
        assert re.search(rf"^  {code} +\S", exit_codes.EPILOG, flags=re.M), name


@pytest.mark.parametrize(
    "field",
    [
        "username",
        "password",
        *settings.REQUIRED_SETTINGS,
        "smtp_host",
        "smtp_port",
        "smtp_tls",
        "kion_ca_bundle",
        "smtp_ca_bundle",
    ],
)
def test_every_secret_field_is_in_the_schema(field):
    assert f"| `{field}` |" in section("The secrets")
    assert field in settings.SCHEMA_HINT


def test_every_function_setting_is_documented():
    variables = set(re.findall(r'"([A-Z][A-Z_]+)"', inspect.getsource(config)))
    assert variables
    documented = section("The secrets")
    assert not [name for name in variables if f"| `{name}` |" not in documented]
