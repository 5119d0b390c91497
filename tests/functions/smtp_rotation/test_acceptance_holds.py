"""SES SMTP is many servers: a key is proven by several accepted logins in a row, and a
connection that fails during the wait is tried again within the bound."""

import pytest

from ses_smtp_rotator.functions.errors import SesAuthError
from ses_smtp_rotator.local.rotation_service import RotationStepError


def test_a_key_that_flaps_while_it_propagates_reaches_kion_only_once_settled(world, monkeypatch):
    world.smtp.propagation_delay = 0.2
    world.smtp.propagation_flaps = 1.0  # then accepted and refused by turns for a second

    token = world.start()
    world.step("createSecret", token)
    world.wait_on_virtual_time(token, monkeypatch)  # logins at 0, 0.5, 0.525 (flapping), 1.275…
    world.step("setSecret", token)

    new_key = world.kion_credential()[0]
    outcomes = [a.outcome for a in world.smtp.auth_attempts if a.access_key_id == new_key]
    # It flapped, then three logins in a row proved it, then the send-path proof logged in.
    assert outcomes == ["propagating", "accepted", "propagating", *["accepted"] * 4]
    assert world.smtp.check_credential(*world.kion_credential()) == "accepted"
    world.run_steps(token, ("testSecret", "finishSecret"))
    assert world.converged()


def test_a_key_that_never_settles_does_not_reach_kion(world, monkeypatch):
    monkeypatch.setenv("SES_ACCEPT_TIMEOUT_SECONDS", "0.8")
    world.smtp.propagation_flaps = 3600.0
    before = world.kion_credential()
    token = world.start()
    world.step("createSecret", token)

    with pytest.raises(RotationStepError) as raised:
        world.step("setSecret", token)

    assert isinstance(raised.value.error, SesAuthError)
    assert "but not 3 times in a row" in raised.value.error.cause
    assert world.kion_credential() == before


def test_a_connection_failure_during_the_wait_is_tried_again(world, monkeypatch):
    world.smtp.propagation_delay = 0.4
    token = world.start()
    world.step("createSecret", token)
    world.smtp.stop()  # SES unreachable until the wait first pauses, then on the same port
    restarts = []

    def restart_once() -> None:
        if not restarts:
            restarts.append(world.smtp.start())

    world.wait_on_virtual_time(token, monkeypatch, at_each_pause=restart_once)
    world.step("setSecret", token)

    assert restarts  # the first login found no server, and the wait went on
    world.run_steps(token, ("testSecret", "finishSecret"))
    assert world.converged()


def test_test_secret_waits_rather_than_failing_on_one_refusal(world, monkeypatch):
    token = world.start()
    world.run_steps(token, ("createSecret", "setSecret"))
    judge = world.smtp._outcome  # refuse the first login of testSecret, whenever it comes

    def refuses_the_first_login(access_key_id, smtp_password):
        refused_before = any(a.outcome == "refuse_all" for a in world.smtp.auth_attempts)
        return judge(access_key_id, smtp_password) if refused_before else ("refuse_all", 0.0)

    monkeypatch.setattr(world.smtp, "_outcome", refuses_the_first_login)

    world.step("testSecret", token)

    refusals = [a for a in world.smtp.auth_attempts if a.outcome == "refuse_all"]
    assert refusals
    world.step("finishSecret", token)
    assert world.converged()
