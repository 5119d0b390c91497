"""The toolchain the deploy guide asks for: a Node.js the pinned CDK command line supports, and
`make` targets that keep the CLI's and jsii's banners out of the output."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from synthesized_app import PROJECT_ROOT

DEPLOY_GUIDE = (PROJECT_ROOT / "docs" / "deploying.md").read_text()
BANNER_SWITCHES = (
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20",
    "CDK_DISABLE_VERSION_CHECK=true",
)


def pinned_cli_minimum_node() -> int:
    lock = json.loads((PROJECT_ROOT / "package-lock.json").read_text())
    engines = lock["packages"]["node_modules/aws-cdk"]["engines"]["node"]
    match = re.fullmatch(r">=\s*(\d+)(\.\d+)*", engines.strip())
    assert match, f"unexpected engines range {engines!r}"
    return int(match.group(1))


def test_the_deploy_guide_names_node_versions_the_pinned_cli_supports() -> None:
    needs = re.search(r"^- Python 3\.11\+, Node\.js (\d+) or (\d+) and `make`", DEPLOY_GUIDE, re.M)
    assert needs, "the deploy guide's requirements line is gone"
    versions = [int(version) for version in needs.groups()]
    assert all(version >= pinned_cli_minimum_node() for version in versions)
    # jsii (under aws-cdk-lib) supports only releases before their end of life: 20 is past it.
    assert 20 not in versions


@pytest.mark.parametrize("target", ["synth", "diff", "deploy"])
def test_make_targets_run_the_pinned_cli_without_banners(target: str) -> None:
    recipe = subprocess.run(
        ["make", "--dry-run", "--always-make", target],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,  # a bound for a hung make, not a measure of speed
        check=True,
    ).stdout
    command = next(line for line in recipe.splitlines() if "node_modules/.bin/cdk " in line)
    assert f"node_modules/.bin/cdk {target} --strict" in command
    assert all(switch in command for switch in BANNER_SWITCHES)
    assert json.loads((PROJECT_ROOT / "cdk.json").read_text())["notices"] is False


@pytest.mark.slow
def test_make_synth_prints_no_banner() -> None:
    synth = subprocess.run(
        ["make", "--no-print-directory", "synth"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=900,  # a bound for a hung synthesis, not a measure of speed
        check=False,
    )
    assert synth.returncode == 0, synth.stderr
    output = synth.stdout + synth.stderr
    assert "!!" not in output
    assert "end-of-life" not in output
