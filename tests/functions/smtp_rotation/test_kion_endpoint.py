"""Kion's own SMTP endpoint: a credential reaches Kion only where it works, in ses_region."""

import pytest

from ses_smtp_rotator.functions.errors import KionEndpointError, KionRequestError
from ses_smtp_rotator.local.rotation_service import RotationStepError


def refused(world, step, token):
    with pytest.raises(RotationStepError) as raised:
        world.step(step, token)
    return raised.value.error


def test_kion_sending_through_another_region_is_refused_and_left_untouched(
    make_world, other_regions
):
    # The case: Kion sends through SES eu-west-1, the installation says us-east-1.
    eu_west = other_regions.servers["eu-west-1"]
    world = make_world(other_regions=other_regions, kion_smtp=eu_west)
    assert world.kion_works_where_it_sends()
    before, keys_before = world.kion_credential(), world.access_key_ids()
    token = world.start()
    world.step("createSecret", token)

    error = refused(world, "setSecret", token)

    assert isinstance(error, KionEndpointError)
    assert "eu-west-1" in error.cause
    assert "us-east-1" in error.cause
    assert "ses_region" in error.fix
    assert world.kion_credential() == before
    assert world.kion_works_where_it_sends()
    assert keys_before <= world.access_key_ids()
    assert not [m for m in world.smtp.messages + eu_west.messages]


def test_adoption_refuses_before_making_a_key(make_world, other_regions):
    world = make_world(adopt=True, other_regions=other_regions)
    world.kion.app_config["smtp_host"] = "email-smtp.us-gov-west-1.amazonaws.com"
    keys_before = world.access_key_ids()
    token = world.start()

    error = refused(world, "createSecret", token)

    assert isinstance(error, KionEndpointError)
    assert "us-gov-west-1" in error.cause
    assert world.access_key_ids() == keys_before


@pytest.mark.parametrize(
    "kion_host",
    [
        "email-smtp-fips.us-east-1.amazonaws.com",
        "vpce-0a1b2c3d4e5f-abcdefgh.email-smtp.us-east-1.vpce.amazonaws.com",
        "EMAIL-SMTP.us-east-1.amazonaws.com.",
    ],
)
def test_other_names_of_the_same_region_are_accepted(world, kion_host):
    world.kion.app_config["smtp_host"] = kion_host
    world.rotate()
    assert world.converged()


def test_a_relay_is_accepted_only_where_the_secret_names_it(world):
    world.kion.app_config["smtp_host"] = "smtp-relay.corp.example"
    token = world.start()
    world.step("createSecret", token)
    error = refused(world, "setSecret", token)
    assert isinstance(error, KionEndpointError)
    port = world.kion.app_config["smtp_port"]
    assert error.cause.startswith(
        f"Kion sends through smtp-relay.corp.example:{port}, which is neither an SES SMTP "
        f"endpoint nor the installation's smtp_host ({world.smtp.host})"
    ), error.cause
    assert "smtp_host" in error.fix

    world.kion.app_config["smtp_host"] = world.smtp.host  # the host the secret proves at
    world.run_steps(token, ("setSecret", "testSecret", "finishSecret"))
    assert world.converged()


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"smtp_enabled": False}, "switched off"),
        ({"smtp_host": ""}, "no smtp_host"),
        ({"smtp_from": ""}, "'from' address"),
        ({"smtp_from": "not an address"}, "'from' address"),
    ],
)
def test_kion_settings_that_say_too_little_are_refused(world, changes, words):
    before = world.kion_credential()
    world.kion.app_config.update(changes)
    token = world.start()
    world.step("createSecret", token)

    error = refused(world, "setSecret", token)

    assert isinstance(error, KionEndpointError)
    assert words in error.cause
    assert world.kion_credential() == before
    assert world.kion_authenticates()


def test_no_sender_is_needed_when_the_send_path_check_is_off(world):
    world.edit_current(send_path_check=False)
    world.kion.app_config["smtp_from"] = ""
    world.rotate()
    assert world.converged()


def test_test_secret_checks_the_endpoint_too(world):
    token = world.start()
    world.run_steps(token, ("createSecret", "setSecret"))
    world.kion.app_config["smtp_host"] = "email-smtp.eu-west-1.amazonaws.com"

    error = refused(world, "testSecret", token)

    assert isinstance(error, KionEndpointError)


def test_a_secret_whose_smtp_host_is_in_another_region_is_refused(world):
    world.edit_current(smtp_host="email-smtp.eu-west-1.amazonaws.com")
    token = world.start()
    world.step("createSecret", token)

    error = refused(world, "setSecret", token)

    assert isinstance(error, KionEndpointError)
    assert "smtp_host" in error.cause


@pytest.mark.parametrize(
    ("reply_username", "problem"),
    [
        ("omitted", "without smtp_username"),
        (None, "without smtp_username"),
        (587, "with a smtp_username that is not text"),
    ],
)
def test_a_kion_reply_without_a_username_is_an_error_not_no_key(world, reply_username, problem):
    if reply_username == "omitted":
        world.kion.omitted_fields.add("smtp_username")
    else:
        world.kion.app_config["smtp_username"] = reply_username
    before = world.kion.app_config["smtp_password"]
    token = world.start()
    world.step("createSecret", token)

    error = refused(world, "setSecret", token)

    assert isinstance(error, KionRequestError)
    assert error.cause == (
        f"Kion at {world.current()['kion_url']} answered GET /api/v3/app-config {problem}, so "
        "which key Kion sends with is unknown."
    )
    assert error.fix == (
        "Check that kion_url points at Kion 3.x and that the API key's user may read system "
        "settings; an empty string is how Kion says it has no SMTP username."
    )
    assert world.kion.app_config["smtp_password"] == before


@pytest.mark.parametrize("mask", ["", "********", "•••••", "<hidden>", "REDACTED", "xxxxxxxx"])
def test_a_password_masked_in_any_style_does_not_fail_test_secret(world, mask):
    world.kion.mask_password = True
    world.kion.password_mask = mask
    world.rotate()
    assert world.converged()


def test_kion_on_port_25_is_proven_on_a_port_lambda_may_use(world):
    world.kion.app_config["smtp_port"] = 25
    world.rotate()
    assert world.converged()
    assert world.smtp.accepted_logins(world.kion_credential()[0]) >= 3


def test_the_region_fix_names_real_hosts_and_sesregion_in_cdk_json(make_world, other_regions):
    eu_west = other_regions.servers["eu-west-1"]
    world = make_world(other_regions=other_regions, kion_smtp=eu_west)
    token = world.start()
    world.step("createSecret", token)

    error = refused(world, "setSecret", token)

    assert "..." not in error.fix
    assert "email-smtp.us-east-1.amazonaws.com" in error.fix
    assert "set its sesRegion to eu-west-1 in cdk.json and deploy" in error.fix
    assert "otherwise set the secret's ses_region to eu-west-1" in error.fix
