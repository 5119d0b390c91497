"""Invariant 5: a bad input gives one clear error, naming its cause and its fix, and leaves
nothing that the next run cannot finish once the input is put right.

Each case spoils one input of an installation (the secret, the Kion API key, Kion, SES SMTP, IAM,
a permission), runs a rotation, and checks the step that fails and the error it raises. Then it
repairs the input as the error's fix says and lets Secrets Manager go on; the rotation must
finish and the installation converge. Invariants 1 and 2 are checked after every step throughout.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fault_injection import FaultInjector, closed_port
from safety_figures import BAD_INPUT, CONFIG_MISMATCH
from safety_harness import (
    ABANDON,
    ADOPT,
    LEFTOVER,
    RESUME,
    RETRY,
    STEADY,
    SafetyRun,
    ses_refuses_new_keys,
)

from ses_smtp_rotator.functions import errors
from ses_smtp_rotator.functions.services.smtp_password import derive_smtp_password
from ses_smtp_rotator.functions.smtp_rotation.handler import lambda_handler
from ses_smtp_rotator.functions.telemetry import SERVICE
from ses_smtp_rotator.local.kion_server import KionStandIn
from ses_smtp_rotator.local.rotation_service import LambdaContextStub
from ses_smtp_rotator.local.smtp_server import SesSmtpServer, SilentSmtpServer, moto_key_lookup
from ses_smtp_rotator.local.tls import LoopbackCertificates


@dataclass
class Installation:
    """An installation under test and the stand-ins a case may spoil."""

    run: SafetyRun
    injector: FaultInjector
    kion: KionStandIn
    smtp: SesSmtpServer
    silent: SilentSmtpServer
    monkeypatch: pytest.MonkeyPatch

    @property
    def world(self) -> Any:
        return self.run.world


Repair = Callable[[], None]
Spoil = Callable[[Installation], Repair]  # spoils an input; returns how to put it right


@dataclass(frozen=True)
class BadInput:
    kind: str
    spoil: Spoil
    error: type[errors.RotationError]
    cause: str  # a pattern the error's cause must match
    fix: str  # a pattern the error's fix must match
    step: str = "createSecret"  # the step that must fail
    variant: str = STEADY
    then: str = RETRY  # how Secrets Manager (or the operator) goes on after the repair


# -- spoilers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecretEdit:
    """Store a new AWSCURRENT version made from the current fields, as an operator's edit; its
    repair is another edit that puts the original text back."""

    spoiled: Callable[[dict[str, Any], Installation], str]

    def __call__(self, installation: Installation) -> Repair:
        secrets = installation.world.secretsmanager
        secret_id = installation.world.secret_id
        original = secrets.get_secret_value(SecretId=secret_id)["SecretString"]
        text = self.spoiled(json.loads(original), installation)
        secrets.put_secret_value(SecretId=secret_id, SecretString=text)
        return lambda: secrets.put_secret_value(SecretId=secret_id, SecretString=original)


def stored_secret(spoiled: Callable[[dict[str, Any], Installation], str]) -> Spoil:
    return SecretEdit(spoiled)


def secret_text(text: str) -> Spoil:
    return stored_secret(lambda fields, installation: text)


def fields(**changes: Any) -> Spoil:
    """Change fields of the secret (``...`` removes one; a callable computes the value)."""

    def edit(current: dict[str, Any], installation: Installation) -> str:
        for name, value in changes.items():
            current[name] = value(installation) if callable(value) else value
        return json.dumps({name: value for name, value in current.items() if value is not ...})

    return stored_secret(edit)


def kion_api_key(text: str) -> Spoil:
    def spoil(installation: Installation) -> Repair:
        installation.world.put_kion_api_key(text)
        return lambda: installation.world.put_kion_api_key(installation.kion.api_key)

    return spoil


def kion_api_key_revoked(installation: Installation) -> Repair:
    for key_id in list(installation.kion.api_keys):
        installation.kion.revoke_api_key(key_id)

    def repair() -> None:
        _, new_key = installation.kion.create_api_key()
        installation.world.put_kion_api_key(new_key)

    return repair


def kion_answers(status: int) -> Spoil:
    def spoil(installation: Installation) -> Repair:
        installation.kion.fail_requests(status, count=None, message=f"injected {status}")
        return installation.kion.clear_faults

    return spoil


def kion_html(status: int) -> Spoil:
    def spoil(installation: Installation) -> Repair:
        installation.kion.html_replies, installation.kion.html_status = True, status
        return installation.kion.clear_faults

    return spoil


def kion_slow(installation: Installation) -> Repair:
    """Kion answers after 1 s; the function waits 0.2 s for it, without retries."""
    before = {name: os.environ[name] for name in ("KION_TIMEOUT_SECONDS", "KION_RETRIES")}
    installation.monkeypatch.setenv("KION_TIMEOUT_SECONDS", "0.2")
    installation.monkeypatch.setenv("KION_RETRIES", "0")
    installation.kion.delay = 1.0

    def repair() -> None:
        installation.kion.clear_faults()
        for name, value in before.items():
            installation.monkeypatch.setenv(name, value)

    return repair


def ses_never_accepts_new_keys(installation: Installation) -> Repair:
    """SES refuses every key made from now on (535) for longer than the wait; older keys work."""
    ses_refuses_new_keys(installation.world, installation.monkeypatch)

    def repair() -> None:
        installation.smtp.propagation_delay = 0.0

    return repair


def two_keys_in_use(installation: Installation) -> Repair:
    """Kion was pointed by hand at a second key that no version of the secret holds."""
    world = installation.world
    user = world.installation.iam_user_name
    by_hand = world.iam.create_access_key(UserName=user)["AccessKey"]
    world.kion.app_config.update(
        smtp_username=by_hand["AccessKeyId"],
        smtp_password=derive_smtp_password(by_hand["SecretAccessKey"], world.smtp.region),
    )

    def repair() -> None:  # what the error's fix says
        current = world.current()
        world.kion.app_config.update(
            smtp_username=current["username"], smtp_password=current["password"]
        )
        world.iam.delete_access_key(UserName=user, AccessKeyId=by_hand["AccessKeyId"])

    return repair


def denied(call: str, resource: str = "") -> Spoil:
    def spoil(installation: Installation) -> Repair:
        installation.injector.deny(call, resource)
        return installation.injector.denied.clear

    return spoil


def another_ca(installation: Installation) -> str:
    return LoopbackCertificates().ca_pem


def a_closed_port(installation: Installation) -> int:
    return closed_port()


def silent_port(installation: Installation) -> int:
    return installation.silent.port


def kion_elsewhere(installation: Installation) -> str:
    return f"https://127.0.0.1:{closed_port()}"


def kion_under_a_path(installation: Installation) -> str:
    return installation.kion.url + "/kion"


# -- the cases -----------------------------------------------------------------------------

SCHEMA = r"JSON object with the string fields"
SECRET = errors.InvalidSecretError
KEY = errors.KionApiKeyError


def both(*spoils: Spoil) -> Spoil:
    def spoil(installation: Installation) -> Repair:
        repairs = [one(installation) for one in spoils]
        return lambda: [repair() for repair in reversed(repairs)] and None

    return spoil


def kion_settings(**changes: Any) -> Spoil:
    """Change Kion's SMTP settings (``...`` leaves a field out of Kion's replies)."""

    def spoil(installation: Installation) -> Repair:
        kion, world = installation.kion, installation.world
        before = dict(kion.app_config)
        for name, value in changes.items():
            if value is ...:
                kion.omitted_fields.add(name)
            else:
                kion.app_config[name] = value(installation) if callable(value) else value
        there = world.ses_at_kion_host()
        if "smtp_host" in changes and there is not None and there is not installation.smtp:
            # Kion was set up for SES in that region: its key's password is that region's.
            key = moto_key_lookup()(kion.app_config["smtp_username"])
            kion.app_config["smtp_password"] = derive_smtp_password(
                key.secret_access_key, there.region
            )

        def repair() -> None:
            kion.omitted_fields.clear()
            for name in (*changes, "smtp_password"):
                kion.app_config[name] = before[name]

        return repair

    return spoil


def relay_host(installation: Installation) -> str:
    """The loopback address the secret proves at: Kion sends through it as a declared relay."""
    return installation.smtp.host


def ses_switch(**switches: Callable[[Installation], Any]) -> Spoil:
    def spoil(installation: Installation) -> Repair:
        smtp = installation.smtp
        before = {name: getattr(smtp, name) for name in switches}
        for name, value in switches.items():
            setattr(smtp, name, value(installation))
        return lambda: [setattr(smtp, name, value) for name, value in before.items()] and None

    return spoil


def another_consumers_key(installation: Installation) -> Repair:
    """The installation's IAM user was imported (not made for it) and serves another consumer
    with its second key; the repair moves that consumer to a user of its own."""
    world = installation.world
    user = world.installation.iam_user_name
    secret = world.current()
    world.edit_current(iam_user_dedicated=False)
    other = world.iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    world.backdate_keys()

    def repair() -> None:
        world.iam.delete_access_key(UserName=user, AccessKeyId=other)
        world.edit_current(iam_user_dedicated=secret.get("iam_user_dedicated", True))

    return repair


def missing(field: str) -> BadInput:
    return BadInput(
        f"secret-missing-{field}",
        fields(**{field: ...}),
        SECRET,
        rf"field '{field}' is missing",
        rf"Add '{field}' to the secret",
    )


def aws_denied(call: str, step: str, variant: str = STEADY, resource: str = "") -> BadInput:
    action = call.replace(".", ":", 1)
    where = f"-on-{resource}" if resource else ""
    return BadInput(
        f"access-denied-{call}{where}",
        denied(call, resource),
        errors.AwsPermissionError,
        rf"AWS refused {action} on .*\(AccessDenied\)",
        rf"Allow {action} on .* in the rotation function's role",
        step=step,
        variant=variant,
    )


CASES = [
    # the installation secret
    BadInput("secret-not-json", secret_text("{not json"), SECRET, "is not valid JSON", SCHEMA),
    BadInput("secret-not-an-object", secret_text("[1, 2]"), SECRET, "not a JSON object", SCHEMA),
    *(missing(f) for f in ("ses_region", "iam_user_name", "kion_url", "kion_api_key_secret_id")),
    BadInput(
        "secret-region-not-text",
        fields(ses_region=5),
        SECRET,
        "'ses_region' must be a non-empty string",
        "Set 'ses_region' to a text value",
    ),
    BadInput(
        "secret-port-not-a-number",
        fields(smtp_port="587"),
        SECRET,
        "'smtp_port' must be a port number",
        "Use 587",
    ),
    BadInput(
        "secret-username-not-text",
        fields(username=123),
        SECRET,
        "'username' must be a string",
        "Set 'username' to a text value",
    ),
    BadInput(
        "secret-half-a-credential",
        fields(password=""),
        SECRET,
        "'password' is empty while the other half",
        "Set both username and password",
    ),
    BadInput(
        "secret-unknown-region",
        fields(ses_region="us-moon-1"),
        SECRET,
        "'us-moon-1', which is not a region with Amazon SES",
        "us-east-1",
    ),
    BadInput(
        "secret-kion-url-not-https",
        fields(kion_url="http://kion.example.com"),
        SECRET,
        "'kion_url' is not an https:// address",
        "https://kion.example.com",
    ),
    BadInput(
        "secret-kion-url-no-scheme",
        fields(kion_url="kion.example.com"),
        SECRET,
        "'kion_url' is not an https:// address",
        "https://kion.example.com",
    ),
    BadInput(
        "secret-ca-bundle-not-pem",
        fields(kion_ca_bundle="not a certificate"),
        SECRET,
        "'kion_ca_bundle' is not a PEM certificate",
        "BEGIN CERTIFICATE",
    ),
    BadInput(
        "secret-smtp-tls-unknown",
        fields(smtp_tls="ssl"),
        SECRET,
        "'smtp_tls' must be 'starttls' or 'implicit'",
        "Remove it",
    ),
    BadInput(
        "iam-user-missing",
        fields(iam_user_name="nobody-ses-smtp"),
        SECRET,
        "'iam_user_name' names IAM user 'nobody-ses-smtp', which does not exist",
        "Set it to the IAM user",
    ),
    # the Kion API key secret
    BadInput(
        "api-key-secret-missing",
        fields(kion_api_key_secret_id="kion/no-such-secret"),
        KEY,
        "kion/no-such-secret does not exist",
        "set kion_api_key_secret_id to the right secret",
        step="setSecret",
    ),
    BadInput("api-key-empty", kion_api_key("   "), KEY, "is empty", "plain text", "setSecret"),
    BadInput(
        "api-key-json-without-api-key",
        kion_api_key('{"key": "abcdefghijklmnop"}'),
        KEY,
        "without an 'api_key' field",
        '"api_key"',
        step="setSecret",
    ),
    BadInput(
        "api-key-unreadable-json",
        kion_api_key('{"api_key": '),
        KEY,
        "JSON that cannot be read",
        '"api_key"',
        step="setSecret",
    ),
    BadInput(
        "api-key-two-words",
        kion_api_key("first-key second-key"),
        KEY,
        "does not hold a single key",
        "plain text",
        step="setSecret",
    ),
    # Kion's answers
    BadInput(
        "kion-400",
        kion_answers(400),
        errors.KionRequestError,
        r"HTTP 400\. Kion said: injected 400",
        "fix what Kion's message names",
        step="setSecret",
    ),
    BadInput(
        "kion-401-key-revoked",
        kion_api_key_revoked,
        errors.KionAuthError,
        r"rejected the App API key \(401\)",
        "valid, unexpired App API key",
        step="setSecret",
    ),
    BadInput(
        "kion-403",
        kion_answers(403),
        errors.KionPermissionError,
        r"\(403\): the API key's user may not manage system settings",
        "permission scheme",
        step="setSecret",
    ),
    BadInput(
        "kion-404-wrong-path",
        fields(kion_url=kion_under_a_path),
        errors.KionNotFoundError,
        r"has no /api/v3/app-config \(404\)",
        "Check kion_url",
        step="setSecret",
    ),
    BadInput(
        "kion-422",
        kion_answers(422),
        errors.KionRequestError,
        r"HTTP 422\. Kion said: injected 422",
        "fix what Kion's message names",
        step="setSecret",
    ),
    BadInput(
        "kion-500",
        kion_answers(500),
        errors.KionRequestError,
        r"HTTP 500\. Kion said: injected 500",
        "Retry later for 5xx",
        step="setSecret",
    ),
    BadInput(
        "kion-html-login-page",
        kion_html(200),
        errors.KionRequestError,
        "HTTP 200 and a reply that is not Kion's JSON",
        "not a login page",
        step="setSecret",
    ),
    BadInput(
        "kion-html-error-page",
        kion_html(502),
        errors.KionRequestError,
        "HTTP 502 and a reply that is not Kion's JSON",
        "load balancer error page",
        step="setSecret",
    ),
    BadInput(
        "kion-tls-untrusted",
        fields(kion_ca_bundle=another_ca),
        errors.KionConnectionError,
        "TLS with Kion at .* failed",
        "kion_ca_bundle",
        step="setSecret",
    ),
    BadInput(
        "kion-timeout",
        kion_slow,
        errors.KionConnectionError,
        "timed out",
        "Kion is up",
        step="setSecret",
    ),
    BadInput(
        "kion-unreachable",
        fields(kion_url=kion_elsewhere),
        errors.KionConnectionError,
        r"failed \(NewConnectionError\)",
        "can reach Kion",
        step="setSecret",
    ),
    # SES SMTP
    BadInput(
        "smtp-535-forever",
        ses_never_accepts_new_keys,
        errors.SesAuthError,
        r"still refuses access key .* after 3 s \(535",
        "ses:SendRawEmail",
        step="setSecret",
    ),
    BadInput(
        "smtp-535-relay-in-another-region",
        both(fields(ses_region="us-west-2"), kion_settings(smtp_host=relay_host)),
        errors.SesAuthError,
        r"still refuses access key .* \(535",
        "that ses_region is the region of smtp_host",
        step="setSecret",
        then=ABANDON,
    ),
    # Kion's own endpoint (where Kion sends) against the installation's region
    BadInput(
        "kion-host-in-another-region",
        fields(ses_region="us-west-2"),
        errors.KionEndpointError,
        r"email-smtp.us-east-1.amazonaws.com .* ses_region is us-west-2",
        "set the secret's ses_region to us-east-1",
        step="setSecret",
    ),
    BadInput(
        "kion-host-in-another-region-at-adoption",
        kion_settings(smtp_host="email-smtp.eu-west-1.amazonaws.com"),
        errors.KionEndpointError,
        r"SES in eu-west-1\), but the installation's ses_region is us-east-1",
        "point Kion's SMTP host at email-smtp.us-east-1",
        variant=ADOPT,
    ),
    BadInput(
        "kion-host-in-another-partition",
        kion_settings(smtp_host="email-smtp.us-gov-west-1.amazonaws.com"),
        errors.KionEndpointError,
        r"another partition, aws-us-gov",
        "ses_region to us-gov-west-1",
        step="setSecret",
    ),
    BadInput(
        "kion-host-fips-in-another-region",
        kion_settings(smtp_host="email-smtp-fips.us-east-2.amazonaws.com"),
        errors.KionEndpointError,
        r"SES FIPS in us-east-2",
        "ses_region to us-east-2",
        step="setSecret",
    ),
    BadInput(
        "kion-host-vpc-endpoint-in-another-region",
        kion_settings(smtp_host="vpce-0a1b2c3d-x1y2z3.email-smtp.eu-west-1.vpce.amazonaws.com"),
        errors.KionEndpointError,
        r"SES VPC endpoint in eu-west-1",
        "ses_region to eu-west-1",
        step="setSecret",
    ),
    BadInput(
        "kion-relay-not-declared",
        kion_settings(smtp_host="mail-relay.corp.example"),
        errors.KionEndpointError,
        r"neither an SES SMTP endpoint nor the installation's smtp_host",
        "set the secret's smtp_host to mail-relay.corp.example",
        step="setSecret",
    ),
    BadInput(
        "kion-smtp-switched-off",
        kion_settings(smtp_enabled=False),
        errors.KionEndpointError,
        "smtp_enabled is false",
        "Switch SMTP on in Kion",
        step="setSecret",
    ),
    BadInput(
        "kion-smtp-host-missing",
        kion_settings(smtp_host=...),
        errors.KionEndpointError,
        "name no smtp_host",
        "Set Kion's SMTP host",
        step="setSecret",
    ),
    BadInput(
        "kion-from-address-missing",
        kion_settings(smtp_from=""),
        errors.KionEndpointError,
        "'from' address is empty",
        "send_path_check to false",
        step="setSecret",
    ),
    BadInput(
        "kion-reply-without-username",
        kion_settings(smtp_username=...),
        errors.KionRequestError,
        "without smtp_username",
        "an empty string is how Kion says",
        step="setSecret",
    ),
    BadInput(
        "secret-smtp-host-in-another-region",
        fields(smtp_host="email-smtp.eu-west-1.amazonaws.com"),
        errors.KionEndpointError,
        r"smtp_host .* is not in its ses_region us-east-1",
        "Set smtp_host to an SES SMTP endpoint of us-east-1",
        step="setSecret",
    ),
    BadInput(
        "send-path-check-not-a-boolean",
        fields(send_path_check="yes"),
        errors.InvalidSecretError,
        "'send_path_check' must be true or false",
        "JSON boolean",
    ),
    BadInput(
        "iam-user-dedicated-not-a-boolean",
        fields(iam_user_dedicated=1),
        errors.InvalidSecretError,
        "'iam_user_dedicated' must be true or false",
        "JSON boolean",
    ),
    # the send-path check's message, refused by SES
    BadInput(
        "send-sender-not-verified",
        kion_settings(smtp_from="kion@unverified.example.org"),
        errors.SesSendRefusedError,
        "Email address is not verified",
        "Verify kion@unverified.example.org",
        step="setSecret",
    ),
    BadInput(
        "send-from-address-condition",
        ses_switch(
            from_addresses=lambda i: {i.world.installation.iam_user_name: {"x@example.com"}}
        ),
        errors.SesSendRefusedError,
        "is not authorized to perform `ses:SendRawEmail'",
        "ses:FromAddress",
        step="setSecret",
    ),
    BadInput(
        "send-account-paused",
        ses_switch(sending_paused=lambda i: True),
        errors.SesSendRefusedError,
        "Sending paused for this account",
        "Sending is paused",
        step="setSecret",
    ),
    BadInput(
        "send-throttled",
        ses_switch(throttle_next=lambda i: 1000),
        errors.SesSendRefusedError,
        "454 Throttling failure",
        "request a higher sending quota",
        step="setSecret",
    ),
    BadInput(
        "imported-user-key-of-another-consumer",
        another_consumers_key,
        errors.KeyLimitError,
        "may serve another consumer",
        "needs its own IAM user",
    ),
    BadInput(
        "smtp-unreachable",
        fields(smtp_port=a_closed_port),
        errors.SmtpConnectionError,
        r"\(connection refused\)",
        "security group egress",
        step="setSecret",
    ),
    BadInput(
        "smtp-timeout",
        fields(smtp_port=silent_port),
        errors.SmtpConnectionError,
        r"\(timed out\)",
        "security group egress",
        step="setSecret",
    ),
    BadInput(
        "smtp-tls-untrusted",
        fields(smtp_ca_bundle=another_ca),
        errors.SmtpTlsError,
        "certificate that is not trusted",
        "smtp_ca_bundle",
        step="setSecret",
    ),
    BadInput(
        "smtp-tls-mode-wrong",
        fields(smtp_tls="implicit"),
        errors.SmtpTlsError,
        "TLS with the SMTP server at .* failed",
        "465 and 2465 use TLS from the start",
        step="setSecret",
    ),
    # IAM
    BadInput(
        "iam-two-keys-both-in-use",
        two_keys_in_use,
        errors.KeyLimitError,
        "already has two access keys .* both are in use",
        "Point Kion at the AWSCURRENT credential",
    ),
    # permissions, one per AWS call the rotation makes
    aws_denied("iam.CreateAccessKey", "createSecret"),
    aws_denied("iam.ListAccessKeys", "createSecret", LEFTOVER),
    aws_denied("iam.DeleteAccessKey", "createSecret", LEFTOVER),
    aws_denied("iam.UpdateAccessKey", "finishSecret"),
    aws_denied("secretsmanager.TagResource", "finishSecret"),
    aws_denied("secretsmanager.DescribeSecret", "createSecret"),
    aws_denied("secretsmanager.GetSecretValue", "createSecret"),
    aws_denied("secretsmanager.GetSecretValue", "setSecret", resource="kion-api-key"),
    aws_denied("secretsmanager.PutSecretValue", "createSecret"),
    aws_denied("secretsmanager.UpdateSecretVersionStage", "finishSecret"),
    aws_denied("secretsmanager.ListSecretVersionIds", "createSecret", RESUME),
]


@pytest.fixture
def installation(
    make_run: Callable[[str], SafetyRun],
    injector: FaultInjector,
    kion: KionStandIn,
    smtp: SesSmtpServer,
    silent_smtp: SilentSmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[str], Installation]:
    def make(variant: str) -> Installation:
        return Installation(make_run(variant), injector, kion, smtp, silent_smtp, monkeypatch)

    return make


def function_errors(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str | None]]:
    """The (message, fix) of every ERROR the rotation function logged."""
    return [
        (record.getMessage(), getattr(record, "fix", None))
        for record in caplog.records
        if record.name == SERVICE and record.levelno >= logging.ERROR
    ]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.kind)
def test_a_bad_input_gives_one_clear_error_and_the_next_run_finishes(
    case: BadInput,
    installation: Callable[[str], Installation],
    caplog: pytest.LogCaptureFixture,
    record_property: Callable[[str, object], None],
) -> None:
    subject = installation(case.variant)
    run = subject.run
    repair = case.spoil(subject)

    failure = run.rotate()

    assert failure is not None, "the rotation did not notice the bad input"
    error = failure.error
    assert (failure.step, type(error)) == (case.step, case.error), repr(error)
    assert re.search(case.cause, error.cause), error.cause
    assert re.search(case.fix, error.fix), error.fix
    assert str(error) == f"{error.cause} Fix: {error.fix}"
    assert function_errors(caplog) == [(error.cause, error.fix)]

    repair()
    rest = run.continue_after(failure, case.then)
    if isinstance(case.spoil, SecretEdit) and case.step != "createSecret":
        # The pending version was stored with the bad settings: the retry must say so and how
        # to go on (abandon it), rather than fail again for the cause already repaired.
        assert rest is not None, "a retry went on with the pending version's old settings"
        assert type(rest.error) is errors.RotationStateError, repr(rest.error)
        assert "settings were changed after this rotation" in rest.error.cause
        assert f"--remove-from-version-id {rest.token}" in rest.error.fix
        rest = run.continue_after(rest, ABANDON)
    assert rest is None, f"after the repair, {rest.step} failed: {rest.error}"
    run.assert_converged()
    record_property(BAD_INPUT, case.kind)
    if isinstance(error, errors.KionEndpointError):
        record_property(CONFIG_MISMATCH, error.kind)


def test_a_token_that_is_not_a_version_of_the_secret(
    installation: Callable[[str], Installation],
    caplog: pytest.LogCaptureFixture,
    record_property: Callable[[str, object], None],
) -> None:
    run = installation(STEADY).run
    stranger = str(uuid.uuid4())

    failure = run.invoke("createSecret", stranger)

    assert failure is not None
    assert type(failure.error) is errors.RotationStateError
    assert f"Version {stranger} is not a version of this secret" in failure.error.cause
    assert "start a new rotation" in failure.error.fix
    assert function_errors(caplog) == [(failure.error.cause, failure.error.fix)]
    assert run.continue_after(failure, ABANDON) is None
    run.assert_converged()
    record_property(BAD_INPUT, "token-not-a-version")


@pytest.mark.parametrize(
    "event",
    [{}, {"SecretId": "s", "ClientRequestToken": "t"}, {"SecretId": "s", "Step": "rotate"}],
    ids=["empty", "no-step", "unknown-step"],
)
def test_an_event_that_is_not_a_rotation_step(
    event: dict[str, str],
    installation: Callable[[str], Installation],
    record_property: Callable[[str, object], None],
) -> None:
    run = installation(STEADY).run

    with pytest.raises(errors.RotationStateError) as raised:
        lambda_handler(event, LambdaContextStub())

    assert "not a Secrets Manager rotation event" in raised.value.cause
    assert "through Secrets Manager rotation" in raised.value.fix
    assert run.rotate() is None
    run.assert_converged()
    record_property(BAD_INPUT, "not-a-rotation-event")


def test_a_user_with_no_keys_gets_its_first(
    installation: Callable[[str], Installation],
    record_property: Callable[[str, object], None],
) -> None:
    """A new installation whose SES user has no key yet and whose Kion has no SMTP login."""
    subject = installation(ADOPT)
    world, run = subject.world, subject.run
    for access_key_id in world.access_key_ids():
        world.iam.delete_access_key(
            UserName=world.installation.iam_user_name, AccessKeyId=access_key_id
        )
    world.kion.app_config.update(smtp_username="", smtp_password="")
    run.kion_may_start_unconfigured = True

    assert run.rotate() is None

    assert len(world.access_key_ids()) == 1
    run.assert_converged()
    record_property(BAD_INPUT, "user-with-no-keys")
