"""One demo world per test module; every test starts from a settled secret (no rotation running,
none pending) and stand-ins without faults, with the command line's boto3 pointed at the world."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cli_world import make_world, settle

from ses_smtp_rotator.demo import DemoEnvironment


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoEnvironment]:
    with make_world() as environment:
        yield environment


@pytest.fixture
def world(demo: DemoEnvironment, monkeypatch: pytest.MonkeyPatch) -> Iterator[DemoEnvironment]:
    for name, value in demo.aws_environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    settle(demo)
    yield demo
    settle(demo)
