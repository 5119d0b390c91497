"""A new key takes a while before SES accepts it: setSecret waits, within a bound."""

import pytest

from ses_smtp_rotator.functions.errors import SesAuthError
from ses_smtp_rotator.local.rotation_service import RotationStepError


def test_the_wait_rides_out_a_propagation_delay(world, monkeypatch):
    world.smtp.propagation_delay = 1.5
    old = world.kion_credential()

    token = world.start()
    world.step("createSecret", token)
    world.wait_on_virtual_time(token, monkeypatch)
    world.step("setSecret", token)

    new_key = world.kion_credential()[0]
    assert new_key != old[0]
    refused = [
        a
        for a in world.smtp.auth_attempts
        if a.access_key_id == new_key and a.outcome == "propagating"
    ]
    assert refused, "SES should have refused the fresh key at least once"
    world.run_steps(token, ("testSecret", "finishSecret"))
    assert world.converged()


def test_a_delay_longer_than_the_bound_fails_with_kion_untouched(world, monkeypatch):
    monkeypatch.setenv("SES_ACCEPT_TIMEOUT_SECONDS", "0.6")
    world.backdate_keys(seconds=7200)
    world.smtp.propagation_delay = 3600
    before = world.kion_credential()
    token = world.start()
    world.step("createSecret", token)

    with pytest.raises(RotationStepError) as raised:
        world.step("setSecret", token)

    error = raised.value.error
    assert isinstance(error, SesAuthError)
    assert "still refuses access key" in str(error)
    assert "SES_ACCEPT_TIMEOUT_SECONDS" in error.fix
    assert world.kion_credential() == before
    assert world.kion.requests_to("PATCH") == []
    assert world.kion_authenticates()

    # Once SES accepts the key, Secrets Manager's retry with the same token finishes the job.
    world.smtp.propagation_delay = 0
    world.run_steps(token)
    assert world.converged()


def test_a_span_longer_than_half_the_bound_is_cut_to_half_of_it(world, monkeypatch):
    """SES_ACCEPT_MIN_SPAN_SECONDS above half of SES_ACCEPT_TIMEOUT_SECONDS: the logins span
    half the bound, which leaves the other half for the key to propagate first."""
    monkeypatch.setenv("SES_ACCEPT_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("SES_ACCEPT_MIN_SPAN_SECONDS", "2")
    token = world.start()
    world.step("createSecret", token)
    world.wait_on_virtual_time(token, monkeypatch)

    world.step("setSecret", token)

    new_key = world.kion_credential()[0]
    accepted = [a.at for a in world.smtp.auth_attempts if a.access_key_id == new_key][:3]
    assert [round(at - accepted[0], 6) for at in accepted] == [0.0, 0.25, 0.5]
