"""The README and the documentation site stay true to the code: their commands, exit codes, secret
schema, function and cdk.json settings, the errors troubleshooting explains, and every link."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ses_smtp_rotator import functions
from ses_smtp_rotator.cdk import context_settings as cdk_json
from ses_smtp_rotator.cli import exit_codes
from ses_smtp_rotator.functions import config, errors
from ses_smtp_rotator.functions import installation_secret as settings
from ses_smtp_rotator.functions.installation_settings.handler import SettingsWriteError

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text()


def page(name: str) -> str:
    return (DOCS / name).read_text()


def every_text() -> dict[str, str]:
    """The README and every page of the site, by path from the repository's root."""
    texts = {"README.md": README}
    texts.update({str(path.relative_to(ROOT)): path.read_text() for path in DOCS.rglob("*.md")})
    return texts


def slugs(markdown: str) -> set[str]:
    """The anchors MkDocs gives the headings of a page (code blocks left out)."""
    prose = re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S)
    headings = re.findall(r"^#+ (.+)$", prose, flags=re.M)
    return {re.sub(r"\s+", "-", re.sub(r"[^\w\s-]", "", h.lower()).strip()) for h in headings}


def rotation_errors() -> list[str]:
    """Every error a function raises as cause plus fix, wherever in functions/ it is defined."""
    for module in pkgutil.walk_packages(functions.__path__, f"{functions.__name__}."):
        importlib.import_module(module.name)
    found, todo = set(), [errors.RotationError]
    while todo:
        for kind in todo.pop().__subclasses__():
            found.add(kind.__name__)
            todo.append(kind)
    return sorted(found)


def test_the_readme_opens_with_the_two_commands():
    opening = README.split("\n## ", 1)[0]
    commands = re.findall(r"^make (\w+)", opening, flags=re.M)
    assert commands[:2] == ["demo", "test"]


def test_the_readme_fits_on_one_page():
    assert len(README.splitlines()) <= 250


def test_the_readme_has_the_four_deploy_steps():
    steps = re.findall(r"^(\d)\. \*\*", README, flags=re.M)
    assert steps == ["1", "2", "3", "4"]


@pytest.mark.parametrize("name", sorted(every_text()))
def test_the_make_targets_it_names_exist(name):
    makefile = (ROOT / "Makefile").read_text()
    for target in set(re.findall(r"`make (\w+)", every_text()[name])):
        assert re.search(rf"^{target}:", makefile, flags=re.M), target


def test_every_link_of_the_readme_resolves():
    for target in re.findall(r"\]\((?!https?://)([^)]+)\)", README):
        path, _, anchor = target.partition("#")
        assert (ROOT / path).is_file(), target
        if anchor:
            assert anchor in slugs((ROOT / path).read_text()), target


def test_the_site_builds_with_every_link_and_anchor_resolving(tmp_path):
    """mkdocs --strict fails on any warning, a link or an anchor that does not resolve included."""
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": ""},
    )
    assert build.returncode == 0, build.stderr
    assert (tmp_path / "troubleshooting" / "index.html").is_file()


def test_every_error_a_function_raises_is_in_troubleshooting():
    table = page("troubleshooting.md")
    raised = [*rotation_errors(), SettingsWriteError.__name__]
    assert "KionApiKeyExpiredError" in raised
    missing = [name for name in raised if f"| `{name}` |" not in table]
    assert not missing


@pytest.mark.parametrize("name", ["README.md", "docs/operating.md"])
def test_every_exit_code_is_in_the_docs_and_the_help(name):
    table = every_text()[name]
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
    assert f"| `{field}` |" in page("secrets.md")
    assert field in settings.SCHEMA_HINT


def test_every_function_setting_is_documented():
    variables = set(re.findall(r'"([A-Z][A-Z_]+)"', inspect.getsource(config)))
    assert variables
    documented = page("secrets.md")
    assert not [name for name in variables if f"| `{name}` |" not in documented]


def command_line_refusals() -> list[str]:
    """The opening words of every refusal the command line raises (SetupError, NotFoundError)."""
    openings = []
    for path in (ROOT / "ses_smtp_rotator" / "cli").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) in {"SetupError", "NotFoundError"}
                and node.args
            ):
                continue
            message = node.args[0]
            parts = message.values if isinstance(message, ast.JoinedStr) else [message]
            texts = [p.value for p in parts if isinstance(p, ast.Constant)]
            if texts:  # a message passed on from elsewhere (error.cause) is documented there
                openings.append(" ".join(max(texts, key=len).split()[:5]))
    return openings


def test_every_refusal_of_the_command_line_is_in_troubleshooting():
    table = page("troubleshooting.md")
    openings = command_line_refusals()
    assert len(openings) >= 10
    assert not [opening for opening in openings if opening not in table]


def cdk_json_settings() -> list[str]:
    """Every cdk.json setting the app reads, nested ones by path (rotationSchedule.enabled)."""
    nested = {"rotationSchedule", "installations", "vpc"}
    return [
        *(key for key in cdk_json.SETTING_KEYS if key not in nested),
        "installations",
        "vpc",
        *(f"rotationSchedule.{key}" for key in cdk_json.SCHEDULE_KEYS),
        *cdk_json.INSTALLATION_KEYS,
        *cdk_json.VPC_KEYS,
    ]


def test_every_cdk_json_setting_is_in_the_deploy_guide():
    guide = page("deploying.md")
    assert not [key for key in cdk_json_settings() if f"| `{key}` |" not in guide]
