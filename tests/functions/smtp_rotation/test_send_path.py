"""The send-path check: one message from Kion's sender to the mailbox simulator, before Kion is
changed. SES's refusals are one clear error each, with Kion untouched."""

import smtplib

import pytest

from ses_smtp_rotator.functions.errors import SesSendRefusedError
from ses_smtp_rotator.local.rotation_service import RotationStepError

SIMULATOR = ("success@simulator.amazonses.com",)


@pytest.fixture
def at_set_secret(world):
    token = world.start()
    world.step("createSecret", token)
    return token


def refused_set_secret(world, token):
    before = world.kion_credential()
    with pytest.raises(RotationStepError) as raised:
        world.step("setSecret", token)
    assert world.kion_credential() == before
    assert world.kion_authenticates()
    assert all(message.recipients == SIMULATOR for message in world.smtp.messages)
    return raised.value.error


def test_an_unverified_sender_is_refused(world, at_set_secret):
    world.kion.app_config["smtp_from"] = "kion@unverified.example.org"

    error = refused_set_secret(world, at_set_secret)

    assert isinstance(error, SesSendRefusedError)
    assert "Email address is not verified" in error.cause
    assert error.fix == (
        "Verify kion@unverified.example.org or its domain as an SES identity in us-east-1 (in "
        "the SES sandbox, recipients must be verified too: request production access). To skip "
        "this check, set send_path_check to false for the installation."
    )
    world.smtp.verified_identities.add("unverified.example.org")
    world.run_steps(at_set_secret, ("setSecret", "testSecret", "finishSecret"))
    assert world.converged()


def test_a_user_limited_by_ses_from_address_is_refused(world, at_set_secret):
    world.smtp.from_addresses[world.installation.iam_user_name] = {"other@example.com"}

    error = refused_set_secret(world, at_set_secret)

    assert isinstance(error, SesSendRefusedError)
    assert "not authorized to perform `ses:SendRawEmail'" in error.cause
    assert "ses:FromAddress" in error.fix


def test_a_paused_account_is_refused(world, at_set_secret):
    world.smtp.sending_paused = True

    error = refused_set_secret(world, at_set_secret)

    assert isinstance(error, SesSendRefusedError)
    assert "Sending paused" in error.cause
    assert error.fix == (
        "Sending is paused for this account in us-east-1: resolve the cause in the SES console "
        "(reputation or account status), then rotate again. To skip this check, set "
        "send_path_check to false for the installation."
    )


def test_throttling_is_retried_then_refused(world, at_set_secret):
    world.smtp.throttle_next = 2
    world.step("setSecret", at_set_secret)
    assert [m.reply[:3] for m in world.smtp.messages] == ["454", "454", "250"]

    world.run_steps(at_set_secret, ("testSecret", "finishSecret"))
    world.smtp.throttle_next = 10
    world.backdate_retirements()
    token = world.start()
    world.step("createSecret", token)
    error = refused_set_secret(world, token)
    assert isinstance(error, SesSendRefusedError)
    assert "Throttling" in error.cause


def test_the_pause_after_a_throttled_check_runs_on_the_rotations_clock(
    world, at_set_secret, monkeypatch
):
    """The check waits 1 s after a 454 on the rotation's sleep (virtual here), as its other
    waits do, never on the wall clock behind the rotation's back."""
    clock = world.wait_on_virtual_time(at_set_secret, monkeypatch)
    started = clock.now
    world.smtp.throttle_next = 1

    world.step("setSecret", at_set_secret)

    assert [m.reply[:3] for m in world.smtp.messages] == ["454", "250"]
    # 0.05 s of span between the three logins, then the 1 s pause after the 454
    assert clock.now - started == pytest.approx(0.05 + 1.0)


def test_the_sandbox_still_lets_the_simulator_prove_the_path(world):
    world.smtp.sandbox = True
    world.rotate()
    assert world.converged()
    assert [m.recipients for m in world.smtp.messages] == [SIMULATOR]


def test_only_the_simulator_ever_receives_mail(world):
    world.rotate()
    world.backdate_retirements()
    world.rotate()
    assert len(world.smtp.messages) == 2
    assert {m.recipients for m in world.smtp.messages} == {SIMULATOR}
    assert {m.sender for m in world.smtp.messages} == {world.kion.app_config["smtp_from"]}


def test_a_connection_lost_during_the_check_is_tried_again(world, at_set_secret, monkeypatch):
    sends = []
    original = smtplib.SMTP.sendmail

    def sendmail_once_lost(session, *args, **kwargs):
        sends.append(1)
        if len(sends) == 1:
            session.close()  # the connection drops before the message goes out
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return original(session, *args, **kwargs)

    monkeypatch.setattr(smtplib.SMTP, "sendmail", sendmail_once_lost)  # the network, not ours
    world.step("setSecret", at_set_secret)

    assert len(sends) == 2
    assert [m.recipients for m in world.smtp.messages] == [SIMULATOR]
