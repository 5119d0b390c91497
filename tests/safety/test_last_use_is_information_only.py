"""IAM's last-used record is information only: refused or unreachable, the rotation retires the
key all the same and records that the last use is unknown."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from safety_harness import ADOPT, STEADY, SafetyRun


@pytest.mark.parametrize("variant", [STEADY, ADOPT])
def test_a_refused_last_used_read_never_stops_the_retirement(
    variant: str, make_run: Callable[[str], SafetyRun]
) -> None:
    run = make_run(variant)
    replaced = run.before.replaced_key if run.before else ""
    run.injector.deny("iam.GetAccessKeyLastUsed")

    assert run.rotate() is None

    record = run.world.retired_keys()[replaced]
    assert record.last_used is None
    assert record.describe_last_use().startswith("last use before deactivation unknown")
    assert run.world.key_statuses()[replaced] == "Inactive"
    run.injector.denied.clear()
    run.assert_converged()
