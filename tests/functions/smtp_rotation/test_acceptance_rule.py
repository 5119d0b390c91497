"""The SES acceptance rule, login by login: ``SesAcceptanceWait`` against the SES SMTP double,
whose answers follow a script, on a virtual clock (a login may take virtual time too). What
counts is how many logins it makes, when, and what it concludes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from rotation_world import VirtualClock

from ses_smtp_rotator.functions.errors import SesAuthError
from ses_smtp_rotator.functions.installation_secret import InstallationSecret
from ses_smtp_rotator.functions.services.ses_smtp import SesAcceptanceWait, SmtpEndpoint


@dataclass
class ScriptedWait:
    acceptance: SesAcceptanceWait
    credential: InstallationSecret

    @property
    def logins(self) -> int:
        return self.acceptance.logins

    def run(self) -> float:
        return self.acceptance.until_accepted(self.credential.username, self.credential.password)


@pytest.fixture
def scripted(world, monkeypatch) -> Callable[..., ScriptedWait]:
    """``scripted(answers, login_takes=0, **wait)``: a wait on a virtual clock whose logins SES
    answers from ``answers`` (True accepted, False refused; the last answer repeats), each
    login taking ``login_takes`` virtual seconds."""
    current = InstallationSecret.parse(
        world.secretsmanager.get_secret_value(SecretId=world.secret_id)["SecretString"]
    )

    def make(answers: list[bool], login_takes: float = 0.0, **wait: float) -> ScriptedWait:
        clock = VirtualClock()
        script = list(answers)

        def answer(access_key_id: str, smtp_password: str) -> tuple[str, float]:
            clock.sleep(login_takes)
            accepted = script.pop(0) if len(script) > 1 else script[0]
            return ("accepted" if accepted else "refuse_all"), 0.0

        monkeypatch.setattr(world.smtp, "_outcome", answer)
        acceptance = SesAcceptanceWait(
            SmtpEndpoint.of(current, 10.0), clock=clock.monotonic, sleep=clock.sleep, **wait
        )
        return ScriptedWait(acceptance, current)

    return make


def test_three_logins_in_a_row_spanning_the_span_prove_a_key(scripted):
    acceptance = scripted([True], timeout=100, required_logins=3, min_span=1.0)

    assert acceptance.run() == 1.0  # accepted at 0, 0.5 and 1.0
    assert acceptance.logins == 3


def test_two_logins_are_paused_by_the_whole_span(scripted):
    acceptance = scripted([True], timeout=100, required_logins=2, min_span=1.0)

    assert acceptance.run() == 1.0  # accepted at 0 and 1.0
    assert acceptance.logins == 2


def test_slow_logins_still_take_the_number_required(scripted):
    """Each login takes two seconds: the span is long after two, but three are required."""
    acceptance = scripted([True], login_takes=2.0, timeout=100, required_logins=3, min_span=1.0)

    acceptance.run()

    assert acceptance.logins == 3


def test_logins_cut_short_by_the_bound_do_not_prove_a_key(scripted):
    """The bound leaves half a second after the first accepted login: the second comes too soon
    to span the second required, so the key is not proven."""
    acceptance = scripted([True], timeout=0.5, required_logins=2, min_span=1.0)

    with pytest.raises(SesAuthError) as raised:
        acceptance.run()

    assert acceptance.logins == 2
    assert "but not 2 times in a row over 1 s within 0 s" in raised.value.cause


def test_one_login_proves_a_key_when_one_is_required(scripted):
    acceptance = scripted([False, False, True], timeout=100)

    assert acceptance.run() == 2.0  # refused at 0 and 1, accepted at 2
    assert acceptance.logins == 3


def test_a_refused_login_is_tried_again_one_interval_after_it_began(scripted):
    """Each login takes 0.3 s: the next one begins 1 s after the refused one began, not 1 s
    after it ended."""
    acceptance = scripted([False, False, True], login_takes=0.3, timeout=100)

    assert acceptance.run() == pytest.approx(2.3)  # began at 0, 1 and 2; accepted at 2.3
    assert acceptance.logins == 3


def test_a_long_propagation_costs_one_refused_login_a_second_and_no_more_than_a_second(
    scripted,
):
    """The key starts working 7.4 s after the wait began: SES saw 8 refused logins (one a
    second), and the first accepted one came within a second of the key working, however long
    it propagated (a growing backoff would land ever later)."""
    acceptance = scripted([False] * 8 + [True], login_takes=0.05, timeout=100)

    waited = acceptance.run()

    assert acceptance.logins == 9
    assert 7.4 < waited <= 7.4 + 1.0


def test_a_key_accepted_once_then_refused_is_still_propagating(scripted):
    acceptance = scripted([True, False], timeout=3, required_logins=3, min_span=1.0)

    with pytest.raises(SesAuthError) as raised:
        acceptance.run()

    assert raised.value.cause.startswith("SES SMTP at ")
    assert "accepted access key" in raised.value.cause
    assert "the key is still propagating" in raised.value.cause


def test_a_key_never_accepted_is_refused(scripted):
    acceptance = scripted([False], timeout=3, required_logins=3, min_span=1.0)

    with pytest.raises(SesAuthError) as raised:
        acceptance.run()

    assert "still refuses access key" in raised.value.cause


def test_the_span_counts_from_the_first_accepted_login_not_from_the_start(scripted):
    """Refused at 0, accepted at 1.0 and (the bound cutting the pause) at 2.0: the accepted
    logins span one second, not the two since the wait began."""
    acceptance = scripted([False, True], timeout=2.0, required_logins=2, min_span=1.5)

    with pytest.raises(SesAuthError):
        acceptance.run()

    assert acceptance.logins == 3
