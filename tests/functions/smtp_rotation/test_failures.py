"""Kion and SES failures: one clear error each, and Kion left on a credential that works."""

import re
import socket
import threading
import time

import pytest

from ses_smtp_rotator.functions import errors
from ses_smtp_rotator.local.kion_server import KionStandIn
from ses_smtp_rotator.local.rotation_service import STEPS, RotationStepError
from ses_smtp_rotator.local.smtp_server import SilentSmtpServer
from ses_smtp_rotator.local.tls import LoopbackCertificates


def failed_step(world, step, token):
    with pytest.raises(RotationStepError) as raised:
        world.step(step, token)
    return raised.value.error


@pytest.fixture
def at_set_secret(world):
    """A rotation whose createSecret has run: the next step talks to SES and Kion."""
    token = world.start()
    world.step("createSecret", token)
    return token


KION_FIXES = {
    401: "Put a valid, unexpired App API key into {key_secret}; keys expire after Kion's "
    "app_api_key_lifespan setting.",
    403: "Give the key's user a Kion permission scheme that can edit application settings (a "
    "Kion administrator), or use a key of such a user.",
    404: "Check kion_url: it should be the address you open Kion at, without /api.",
    500: "Retry later for 5xx or 429 answers; for other codes fix what Kion's message names.",
    400: "Retry later for 5xx or 429 answers; for other codes fix what Kion's message names.",
}


@pytest.mark.parametrize(
    ("status", "error_type", "words"),
    [
        (401, errors.KionAuthError, "rejected the App API key (401)."),
        (
            403,
            errors.KionPermissionError,
            "refused PATCH /api/v3/app-config (403): the API key's "
            "user may not manage system settings.",
        ),
        (404, errors.KionNotFoundError, "has no /api/v3/app-config (404)."),
        (500, errors.KionRequestError, "answered PATCH /api/v3/app-config with HTTP 500."),
        (400, errors.KionRequestError, "answered PATCH /api/v3/app-config with HTTP 400."),
    ],
)
def test_kion_errors_during_set_secret(world, at_set_secret, status, error_type, words):
    before = world.kion_credential()
    world.kion.fail_requests(status, count=None, methods=["PATCH"])

    error = failed_step(world, "setSecret", at_set_secret)

    assert type(error) is error_type
    assert error.cause.startswith(f"Kion at {world.current()['kion_url']} {words}"), error.cause
    key_secret = world.current()["kion_api_key_secret_id"]
    assert error.fix == KION_FIXES[status].format(key_secret=key_secret)
    assert world.kion_credential() == before
    assert world.kion_authenticates()
    world.kion.clear_faults()
    world.run_steps(at_set_secret)
    assert world.converged()


def test_kion_asking_to_wait_is_waited_for(world, at_set_secret, monkeypatch):
    """A 429 with Retry-After: the retry comes no sooner than Kion asked, whatever the backoff
    (a lower bound the machine's speed cannot break)."""
    monkeypatch.setenv("KION_RETRY_BACKOFF_SECONDS", "0.01")
    world.kion.fail_requests(429, count=1, methods=["PATCH"], retry_after=1)

    world.step("setSecret", at_set_secret)

    patches = world.kion.requests_to("PATCH")
    assert [r.status for r in patches] == [429, 201]
    assert patches[1].at - patches[0].at >= 1.0


def test_kion_5xx_is_retried_and_4xx_is_not(world, at_set_secret):
    world.kion.fail_requests(503, count=1, methods=["PATCH"])
    world.step("setSecret", at_set_secret)
    assert [r.status for r in world.kion.requests_to("PATCH")] == [503, 201]

    gets_before = len(world.kion.requests_to("GET"))
    world.kion.fail_requests(403, count=1, methods=["GET"])
    failed_step(world, "testSecret", at_set_secret)
    assert [r.status for r in world.kion.requests_to("GET")[gets_before:]] == [403]


def test_kion_timeout(world, at_set_secret, monkeypatch):
    monkeypatch.setenv("KION_TIMEOUT_SECONDS", "0.3")
    monkeypatch.setenv("KION_RETRIES", "0")
    before = world.kion_credential()
    world.kion.delay = 1.0

    error = failed_step(world, "setSecret", at_set_secret)

    assert isinstance(error, errors.KionConnectionError)
    assert re.fullmatch(
        rf"GET /api/v3/app-config to Kion at {re.escape(world.current()['kion_url'])} timed out "
        r"\(\w*Timeout\w*\) in 1 attempt, each allowed 0\.3 s to connect and 0\.3 s to answer "
        r"\(KION_TIMEOUT_SECONDS\)\.",
        error.cause,
    ), error.cause
    assert error.fix == (
        "Check that the function can reach Kion (security group egress on 443, routes, DNS) and "
        "that Kion is up."
    )
    world.kion.delay = 0
    assert world.kion_credential() == before
    assert world.kion_authenticates()


def test_a_kion_that_takes_no_connections_fails_the_step_within_its_connect_timeout(
    world, monkeypatch
):
    """A Kion whose address drops connection attempts (a firewall, a dead host) fails setSecret
    after the connect timeout, well inside the function's own timeout, instead of leaving the
    function stuck until Lambda stops it with no cause. On loopback: a listener whose accept
    queue is full never completes another connection."""
    monkeypatch.setenv("KION_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("KION_RETRIES", "0")
    function_timeout = 30.0  # Lambda would stop the function here; the step must end before
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        queued = socket.create_connection(full.getsockname())  # fills the accept queue
        silent = f"https://127.0.0.1:{full.getsockname()[1]}"
        world.edit_current(kion_url=silent)
        token = world.start()
        world.step("createSecret", token)
        outcome: list[BaseException] = []

        def set_secret() -> None:
            try:
                world.step("setSecret", token)
            except RotationStepError as failure:
                outcome.append(failure)

        step = threading.Thread(target=set_secret, daemon=True)
        step.start()
        step.join(function_timeout)
        queued.close()
    assert not step.is_alive(), "setSecret was still connecting to Kion at the function's timeout"
    [failure] = outcome
    assert isinstance(failure.error, errors.KionConnectionError)
    assert failure.error.cause == (
        f"GET /api/v3/app-config to Kion at {silent} timed out (ConnectTimeoutError) in 1 "
        "attempt, each allowed 1 s to connect and 1 s to answer (KION_TIMEOUT_SECONDS)."
    )


def test_kion_unreachable(world, monkeypatch):
    monkeypatch.setenv("KION_RETRIES", "1")
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        nowhere = f"https://127.0.0.1:{closed.getsockname()[1]}"
    world.edit_current(kion_url=nowhere)
    token = world.start()
    world.step("createSecret", token)  # a free key slot: Kion is not asked yet

    error = failed_step(world, "setSecret", token)

    assert isinstance(error, errors.KionConnectionError)
    assert error.cause == (
        f"GET /api/v3/app-config to Kion at {nowhere} failed (NewConnectionError) in 2 attempts."
    )
    assert error.fix == (
        "Check that the function can reach Kion (security group egress on 443, routes, DNS) and "
        "that Kion is up."
    )


def test_kion_certificate_not_trusted(world, monkeypatch):
    monkeypatch.setenv("KION_RETRIES", "2")
    world.edit_current(kion_ca_bundle=...)
    token = world.start()
    world.step("createSecret", token)  # a free key slot: Kion is not asked yet
    connections_before = world.kion.tls_connections

    error = failed_step(world, "setSecret", token)

    # A certificate that is not trusted stays so: the step fails on the first try, not after
    # the retries meant for a Kion that is briefly away.
    assert world.kion.tls_connections - connections_before == 1

    assert isinstance(error, errors.KionConnectionError)
    assert error.cause == (
        f"TLS with Kion at {world.current()['kion_url']} failed: its certificate is not trusted "
        "or does not match the host name."
    )
    assert error.fix == (
        "If Kion uses a private CA, put that CA's PEM certificate into the secret's "
        "kion_ca_bundle field; otherwise check kion_url's host name."
    )
    assert world.kion_authenticates()


def test_kion_certificate_for_another_host_name(aws, smtp, rotation_service, make_world):
    wrong_name = LoopbackCertificates(["kion.example.net"])
    with KionStandIn(certificates=wrong_name) as impostor:
        world = make_world()
        world.edit_current(kion_url=impostor.url, kion_ca_bundle=impostor.ca_pem)
        world.put_kion_api_key(impostor.api_key)
        token = world.start()
        world.step("createSecret", token)

        error = failed_step(world, "setSecret", token)

    assert isinstance(error, errors.KionConnectionError)
    assert "does not match the host name" in str(error)
    assert impostor.request_log == []


def test_an_html_reply_from_kion(world, at_set_secret):
    world.kion.html_replies = True
    error = failed_step(world, "setSecret", at_set_secret)
    assert isinstance(error, errors.KionRequestError)
    assert error.cause == (
        f"Kion at {world.current()['kion_url']} answered GET /api/v3/app-config with HTTP 200 and "
        "a reply that is not Kion's JSON."
    )
    assert error.fix == (
        "Check kion_url: it must be the Kion address itself, not a login page, load balancer "
        "error page or proxy."
    )
    world.kion.html_replies = False
    assert world.kion_authenticates()


def test_ses_refusing_forever(world, at_set_secret, monkeypatch):
    monkeypatch.setenv("SES_ACCEPT_TIMEOUT_SECONDS", "0.5")
    before = world.kion_credential()
    world.smtp.refuse_all = True

    error = failed_step(world, "setSecret", at_set_secret)

    world.smtp.refuse_all = False
    assert isinstance(error, errors.SesAuthError)
    new_key = world.version_fields(VersionId=at_set_secret)["username"]
    assert re.fullmatch(
        rf"SES SMTP at \S+ still refuses access key {new_key} "
        r"after 0 s \(535 Authentication Credentials Invalid\)\.",
        error.cause,
    ), error.cause
    assert error.fix == (
        "Check that the IAM user may call ses:SendRawEmail, that ses_region is the region of "
        "smtp_host, and that SES is out of any account-level suspension; a raise of "
        "SES_ACCEPT_TIMEOUT_SECONDS helps if keys propagate slowly."
    )
    assert world.kion_credential() == before
    assert world.kion_authenticates()


def test_ses_accepting_a_new_key_only_now_and_then(world, at_set_secret, monkeypatch):
    """A key still settling is accepted and refused by turns: never enough logins in a row."""
    monkeypatch.setenv("SES_ACCEPT_TIMEOUT_SECONDS", "1")
    world.smtp.propagation_flaps = 3600
    before = world.kion_credential()

    error = failed_step(world, "setSecret", at_set_secret)

    world.smtp.propagation_flaps = 0
    new_key = world.version_fields(VersionId=at_set_secret)["username"]
    assert isinstance(error, errors.SesAuthError)
    assert re.fullmatch(
        rf"SES SMTP at \S+ accepted access key {new_key}, but not 3 times in a row over 0.05 s "
        r"within 1 s: the key is still propagating\.",
        error.cause,
    ), error.cause
    assert error.fix == (
        "Secrets Manager retries the rotation; if keys propagate slowly in this account, raise "
        "SES_ACCEPT_TIMEOUT_SECONDS."
    )
    assert world.kion_credential() == before


def test_an_smtp_server_that_never_answers(world, monkeypatch):
    monkeypatch.setenv("SMTP_TIMEOUT_SECONDS", "0.3")
    monkeypatch.setenv("SES_ACCEPT_TIMEOUT_SECONDS", "0.5")
    with SilentSmtpServer() as silent:
        world.edit_current(smtp_port=silent.port)
        token = world.start()
        world.step("createSecret", token)
        error = failed_step(world, "setSecret", token)

    assert isinstance(error, errors.SmtpConnectionError)
    assert "timed out" in str(error)
    assert world.kion.requests_to("PATCH") == []
    assert world.kion_authenticates()


def test_an_smtp_server_that_offers_no_auth_is_named_as_such(world, monkeypatch):
    """A relay that offers no AUTH (after STARTTLS) cannot prove any credential."""
    monkeypatch.setenv("SES_ACCEPT_TIMEOUT_SECONDS", "0.3")
    world.smtp.excluded_mechanisms = ("PLAIN", "LOGIN")
    try:
        token = world.start()
        world.step("createSecret", token)
        error = failed_step(world, "setSecret", token)
    finally:
        world.smtp.excluded_mechanisms = ()

    assert isinstance(error, errors.SmtpConnectionError)
    endpoint = f"{world.current()['smtp_host']}:{world.current()['smtp_port']}"
    assert error.cause == (
        f"The SMTP server at {endpoint} does not offer STARTTLS, or AUTH with PLAIN or LOGIN."
    )
    assert error.fix == "Point smtp_host and smtp_port at the SES SMTP endpoint of ses_region."
    assert world.kion.requests_to("PATCH") == []
    assert world.kion_authenticates()


def test_an_smtp_server_that_hangs_up_is_named_by_what_it_did(world, monkeypatch):
    monkeypatch.setenv("SES_ACCEPT_TIMEOUT_SECONDS", "0.3")
    with SilentSmtpServer(hang_up=True) as hangs_up:
        world.edit_current(smtp_port=hangs_up.port)
        token = world.start()
        world.step("createSecret", token)
        error = failed_step(world, "setSecret", token)

    assert isinstance(error, errors.SmtpConnectionError)
    assert error.cause == (
        f"Could not talk to the SMTP server at {world.current()['smtp_host']}:{hangs_up.port} "
        "(SMTPServerDisconnected)."
    )
    assert error.fix == (
        "Check that the function can reach it: security group egress on the SMTP port, the SES "
        "SMTP VPC endpoint or a NAT route, and smtp_host/smtp_port in the secret."
    )
    assert world.kion.requests_to("PATCH") == []


def test_an_smtp_certificate_from_an_unknown_ca(world):
    world.edit_current(smtp_ca_bundle=LoopbackCertificates().ca_pem)
    token = world.start()
    world.step("createSecret", token)

    error = failed_step(world, "setSecret", token)

    assert isinstance(error, errors.SmtpTlsError)
    assert "not trusted" in str(error)
    assert world.kion.requests_to("PATCH") == []
    assert world.kion_authenticates()


def test_test_secret_notices_kion_was_changed_behind_its_back(world, at_set_secret):
    world.step("setSecret", at_set_secret)
    world.kion.app_config["smtp_username"] = "AKIASOMEONEELSE00000"

    error = failed_step(world, "testSecret", at_set_secret)

    assert isinstance(error, errors.KionStateError)
    assert "AKIASOMEONEELSE00000" in str(error)


def test_finish_secret_does_not_move_awscurrent_when_kion_is_not_on_the_new_key(
    world, at_set_secret
):
    world.step("setSecret", at_set_secret)
    world.step("testSecret", at_set_secret)
    current_before = world.current_version_id()
    old_key = world.current()["username"]
    world.kion.app_config["smtp_username"] = old_key

    error = failed_step(world, "finishSecret", at_set_secret)

    assert isinstance(error, errors.KionStateError)
    assert world.current_version_id() == current_before
    assert old_key in world.access_key_ids()


@pytest.mark.parametrize("step", ["setSecret", "testSecret"])
def test_ses_answering_too_slowly_fails_the_step_within_the_smtp_timeout(world, monkeypatch, step):
    """Each SMTP conversation has a timeout: SES answering AUTH after a second, against a timeout
    of 0.3 s, fails the step on that, rather than holding it until Lambda stops it (without the
    timeout the slow login would succeed, and the step fail for another reason or not at all).
    Kion is not changed."""
    token = world.start()
    world.run_steps(token, STEPS[: STEPS.index(step)])
    kion_before, patches_before = world.kion_credential(), len(world.kion.requests_to("PATCH"))
    monkeypatch.setenv("SMTP_TIMEOUT_SECONDS", "0.3")
    monkeypatch.setenv("SES_ACCEPT_TIMEOUT_SECONDS", "0.2")
    judge = world.smtp._outcome

    def slow_answer(access_key_id, smtp_password):
        time.sleep(1.0)  # the server's own slowness: the client's timeout decides, not this
        return judge(access_key_id, smtp_password)

    monkeypatch.setattr(world.smtp, "_outcome", slow_answer)

    error = failed_step(world, step, token)

    assert isinstance(error, errors.SmtpConnectionError)
    current = world.current()
    assert error.cause == (
        f"Could not talk to the SMTP server at {current['smtp_host']}:{current['smtp_port']} "
        "(timed out)."
    )
    assert len(world.kion.requests_to("PATCH")) == patches_before
    assert world.kion_credential() == kion_before
