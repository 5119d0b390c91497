"""The X-Ray trace of a step carries the step's name as an annotation, for trace searches."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest


def capture_module() -> Any:
    """tests/safety/xray_capture.py, as the safety suite's conftest imported it if that suite
    was collected too: the X-Ray recorder has one emitter, which each copy of the module would
    configure for itself."""
    return sys.modules.get("xray_capture") or importlib.import_module("safety.xray_capture")


def entities(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A segment or subsegment and every subsegment nested in it."""
    yield document
    for subsegment in document.get("subsegments", ()):
        yield from entities(subsegment)


@pytest.mark.parametrize("step", ["createSecret", "setSecret"])
def test_a_step_annotates_its_trace_with_its_name(world, monkeypatch, step):
    token = world.start()
    if step != "createSecret":
        world.step("createSecret", token)
    xray = capture_module()
    captured = xray.CapturedTraces()

    with xray.tracing_on(monkeypatch, captured):
        world.step(step, token)

    traced = [entity for doc in captured.documents for entity in entities(json.loads(doc))]
    assert [entity["annotations"] for entity in traced if entity.get("annotations")] == [
        {"step": step}
    ]
