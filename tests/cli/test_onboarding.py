"""``adopt`` and ``check``: a hand-configured Kion becomes an installation in cdk.json, and every
precondition of the first rotation is checked against moto (with the calls moto lacks added by
``local.moto_onboarding``), the SES SMTP stand-ins and the Kion stand-in, before any rotation."""

from __future__ import annotations

import ast
import io
import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from cli_world import run_cli

from ses_smtp_rotator import cdk
from ses_smtp_rotator.cdk.context_settings import PROD_EXAMPLE
from ses_smtp_rotator.cli import onboarding as onboarding_checks
from ses_smtp_rotator.cli.commands.adopt import SHIPPED_EXAMPLE
from ses_smtp_rotator.local.moto_onboarding import OnboardingCalls

SEND_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "ses:SendRawEmail", "Resource": "*"}],
}
EXISTING_CDK_JSON = {
    "app": ".venv/bin/python app.py",
    "context": {
        "stackName": "SesSmtpRotator",
        "installations": [
            {"name": "eu", "kionUrl": "https://kion-eu.example.com", "sesRegion": "eu-west-1"}
        ],
    },
}


@pytest.fixture
def onboarding(make_world, other_regions, tmp_path: Path, monkeypatch) -> Iterator[dict]:
    """A Kion that sends through SES us-east-1 with a key made by hand, its IAM user allowed to
    send (as the stack's user is), the installation deployed with no credential yet, and a
    cdk.json holding another installation."""
    world = make_world(adopt=True, other_regions=other_regions)
    iam = boto3.client("iam")
    iam.put_user_policy(
        UserName=world.installation.iam_user_name,
        PolicyName="send",
        PolicyDocument=json.dumps(SEND_POLICY),
    )
    ca_file = tmp_path / "kion-ca.pem"
    ca_file.write_text(world.kion.ca_pem)
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps(EXISTING_CDK_JSON, indent=2) + "\n")
    servers = [world.smtp, *other_regions.servers.values()]
    with OnboardingCalls(servers):
        yield {"world": world, "ca": str(ca_file), "cdk_json": cdk_json, "iam": iam}


def adopt(capsys, monkeypatch, setup: dict, *options: str, api_key: str | None = None):
    world = setup["world"]
    key = world.kion.api_key if api_key is None else api_key
    monkeypatch.setattr("sys.stdin", io.StringIO(key + "\n"))
    code, output = run_cli(
        capsys,
        "adopt",
        "--kion-url",
        world.kion.url,
        "--name",
        "kion",
        "--kion-ca-bundle",
        setup["ca"],
        "--cdk-json",
        str(setup["cdk_json"]),
        *options,
    )
    assert key not in output or not key
    return code, output


def added_lines(output: str) -> list[str]:
    """The lines the diff adds, without the '+' and the indentation."""
    return [
        line[1:].strip()
        for line in output.splitlines()
        if line.startswith("+") and not line.startswith("+++")
    ]


def removed_lines(output: str) -> list[str]:
    return [
        line[1:].strip()
        for line in output.splitlines()
        if line.startswith("-") and not line.startswith("---")
    ]


def installations(cdk_json: Path) -> list[dict]:
    return json.loads(cdk_json.read_text())["context"]["installations"]


def test_adopt_writes_the_installation_it_found_into_cdk_json(capsys, monkeypatch, onboarding):
    world = onboarding["world"]
    access_key_id = world.kion.app_config["smtp_username"]

    code, output = adopt(capsys, monkeypatch, onboarding, "--yes")

    assert code == 0
    assert f"access key {access_key_id} belongs to user kion-ses-smtp" in output
    assert "The user is in AWS account 123456789012, the one these credentials reach." in output
    assert "email-smtp.us-east-1.amazonaws.com (SES in us-east-1): sesRegion us-east-1" in output
    assert '"iamUserName": "kion-ses-smtp",' in added_lines(output)  # the diff
    other, adopted = installations(onboarding["cdk_json"])
    assert other == EXISTING_CDK_JSON["context"]["installations"][0]
    assert adopted == {
        "name": "kion",
        "kionUrl": world.kion.url,
        "sesRegion": "us-east-1",
        "iamUserName": "kion-ses-smtp",
        "kionCaBundle": world.kion.ca_pem,
    }
    assert json.loads(onboarding["cdk_json"].read_text())["app"] == EXISTING_CDK_JSON["app"]


def test_adopt_again_merges_into_the_installation_of_that_name(capsys, monkeypatch, onboarding):
    adopt(capsys, monkeypatch, onboarding, "--yes")
    onboarding["world"].kion.app_config["smtp_port"] = 465

    code, output = adopt(capsys, monkeypatch, onboarding, "--yes")

    assert code == 0
    assert '"smtpPort": 465' in added_lines(output)
    assert [entry["name"] for entry in installations(onboarding["cdk_json"])] == ["eu", "kion"]


def test_adopt_replaces_the_example_installation_cdk_json_ships_with(
    capsys, monkeypatch, onboarding
):
    shipped = {"context": {"installations": [PROD_EXAMPLE]}}
    onboarding["cdk_json"].write_text(json.dumps(shipped, indent=2) + "\n")

    code, output = adopt(capsys, monkeypatch, onboarding, "--yes")

    assert code == 0
    assert '"kionUrl": "https://kion.example.com",' in removed_lines(output)
    assert [entry["name"] for entry in installations(onboarding["cdk_json"])] == ["kion"]


def test_the_example_adopt_replaces_is_the_one_cdk_json_ships_with():
    shipped = json.loads(Path(__file__).parents[2].joinpath("cdk.json").read_text())
    assert shipped["context"]["installations"] == [PROD_EXAMPLE] == [SHIPPED_EXAMPLE]


def test_adopt_refuses_a_cdk_json_it_cannot_read(capsys, monkeypatch, onboarding):
    onboarding["cdk_json"].unlink()

    code, output = adopt(capsys, monkeypatch, onboarding, "--yes")

    assert code == 1
    assert "cdk.json cannot be read as JSON (FileNotFoundError" in output
    assert "Fix: run adopt in the CDK app's directory, pass --cdk-json PATH" in output
    assert not onboarding["cdk_json"].exists()


def test_adopt_writes_nothing_unconfirmed_when_not_at_a_terminal(capsys, monkeypatch, onboarding):
    before = onboarding["cdk_json"].read_text()

    code, output = adopt(capsys, monkeypatch, onboarding)

    assert code == 1
    assert "not writing" in output
    assert "Fix: pass --yes, or run at a terminal." in output
    assert onboarding["cdk_json"].read_text() == before


def test_adopt_prints_a_construct_call_the_library_accepts(capsys, monkeypatch, onboarding):
    before = onboarding["cdk_json"].read_text()

    code, output = adopt(capsys, monkeypatch, onboarding, "--print-construct")

    assert code == 0
    assert onboarding["cdk_json"].read_text() == before
    call = output[output.index("from ses_smtp_rotator.cdk import") :]
    module = ast.parse(call)
    assert ast.unparse(module.body[0]) == (
        "from ses_smtp_rotator.cdk import Installation, SesSmtpRotation"
    )
    rotation = module.body[1].value
    assert rotation.func.id == "SesSmtpRotation"
    (listed,) = [k.value for k in rotation.keywords if k.arg == "installations"]
    made = [
        cdk.Installation(**{k.arg: ast.literal_eval(k.value) for k in entry.keywords})
        for entry in listed.elts
    ]
    (installation,) = made
    assert installation.iam_user_name == "kion-ses-smtp"
    assert installation.ses_region == "us-east-1"


@pytest.mark.parametrize(
    ("kion_host", "smtp_host"),
    [
        ("email-smtp-fips.us-east-1.amazonaws.com", "email-smtp-fips.us-east-1.amazonaws.com"),
        (
            "vpce-0abc123-xyz.email-smtp.us-east-1.vpce.amazonaws.com",
            "vpce-0abc123-xyz.email-smtp.us-east-1.vpce.amazonaws.com",
        ),
    ],
)
def test_adopt_reads_the_region_from_fips_and_vpc_endpoint_names(
    capsys, monkeypatch, onboarding, kion_host, smtp_host
):
    onboarding["world"].kion.app_config["smtp_host"] = kion_host

    code, _ = adopt(capsys, monkeypatch, onboarding, "--yes")

    assert code == 0
    adopted = installations(onboarding["cdk_json"])[1]
    assert adopted["sesRegion"] == "us-east-1"
    assert adopted["smtpHost"] == smtp_host


def test_adopt_refuses_a_kion_that_is_not_on_ses(capsys, monkeypatch, onboarding):
    onboarding["world"].kion.app_config["smtp_host"] = "smtp.office365.com"

    code, output = adopt(capsys, monkeypatch, onboarding, "--yes")

    assert code == 1
    assert (
        f"error: Kion at {onboarding['world'].kion.url} sends through smtp.office365.com, which "
        "is not an Amazon SES SMTP endpoint, so there is no SES credential to rotate." in output
    )
    assert "Fix: Point Kion's SMTP host at email-smtp.<region>.amazonaws.com" in output


def test_adopt_refuses_a_key_id_of_no_user_it_can_see(capsys, monkeypatch, onboarding):
    onboarding["world"].kion.app_config["smtp_username"] = "AKIAIOSFODNN7EXAMPLE"

    code, output = adopt(capsys, monkeypatch, onboarding, "--yes")

    assert code == 1
    assert (
        "error: Kion's SMTP username AKIAIOSFODNN7EXAMPLE is an access key of no IAM user in the "
        "account these credentials reach." in output
    )
    assert "Fix: Run adopt with credentials of the account that owns Kion's SES key" in output


def test_adopt_refuses_a_kion_key_kion_rejects(capsys, monkeypatch, onboarding):
    code, output = adopt(capsys, monkeypatch, onboarding, "--yes", api_key="not-a-kion-key")

    assert code == 1
    assert "rejected the App API key (401)" in output
    assert "Fix: Put a valid, unexpired App API key into this command's prompt" in output


def test_adopt_check_passes_every_precondition_it_can_make_from_here(
    capsys, monkeypatch, onboarding
):
    code, output = adopt(capsys, monkeypatch, onboarding, "--check", "--print-construct")

    # Kion names the public SES host, which this machine cannot reach (no network here).
    assert "[   ?] SES SMTP reachable: email-smtp.us-east-1.amazonaws.com:587" in output
    for check in (
        "SES account",
        "Sender identity",
        "Send permission",
        "Access keys",
        "Kion settings access",
    ):
        assert f"[  ok] {check}:" in output
    assert (
        "[  ok] Kion key renewal: creation on, keys live 30 days; the key's user holds 1 of 5"
        in (output)
    )
    assert code == 6


def test_adopt_check_fails_a_kion_key_whose_user_has_no_room_for_its_renewal(
    capsys, monkeypatch, onboarding
):
    onboarding["world"].kion.app_config["app_api_key_limit"] = 1

    code, output = adopt(capsys, monkeypatch, onboarding, "--check", "--print-construct")

    assert code == 1
    assert (
        "[FAIL] Kion key renewal: the key's Kion user holds 1 App API keys, Kion's limit is 1: a "
        "renewal makes the new key before deleting the old one and would be refused." in output
    )


def check(capsys, setup: dict) -> tuple[int, str]:
    return run_cli(capsys, "check", setup["world"].secret_id)


def test_check_passes_a_deployed_installation_ready_for_its_first_rotation(capsys, onboarding):
    code, output = check(capsys, onboarding)

    assert code == 0, output
    assert "[  ok] Kion's SES endpoint: Kion sends through email-smtp.us-east-1" in output
    # The write probe wrote the sender back, never the credential a rotation may be changing.
    patches = onboarding["world"].kion.requests_to("PATCH")
    assert [request.fields for request in patches] == [("smtp_from",)]
    assert "[  ok] SES SMTP reachable: 127.0.0.1:" in output
    assert "FAIL" not in output
    assert "[   ?]" not in output


def test_check_fails_a_sandboxed_account(capsys, onboarding):
    onboarding["world"].smtp.sandbox = True

    code, output = check(capsys, onboarding)

    assert code == 1
    assert "[FAIL] SES account: the account is in the SES sandbox in us-east-1" in output
    assert "Fix: Request production access for SES in us-east-1" in output


def test_check_fails_an_account_whose_sending_is_paused(capsys, onboarding):
    onboarding["world"].smtp.sending_paused = True

    code, output = check(capsys, onboarding)

    assert code == 1
    assert "[FAIL] SES account: sending is paused for the account in us-east-1" in output


def test_check_fails_an_unverified_sender(capsys, onboarding):
    onboarding["world"].smtp.verified_identities.clear()
    boto3.client("sesv2").create_email_identity(EmailIdentity="example.com")

    code, output = check(capsys, onboarding)

    assert code == 1
    assert (
        "[FAIL] Sender identity: example.com is an SES identity in us-east-1 but not verified "
        "for sending: SES refuses mail from kion@example.com." in output
    )


def test_check_fails_a_sender_verified_only_in_another_region(capsys, onboarding, other_regions):
    world = onboarding["world"]
    world.smtp.verified_identities.clear()
    other_regions.servers["eu-west-1"].verified_identities.add("example.com")

    code, output = check(capsys, onboarding)

    assert code == 1
    assert (
        "[FAIL] Sender identity: neither kion@example.com nor example.com is an SES identity in "
        "us-east-1, the region of Kion's SMTP host, but example.com is verified in eu-west-1"
        in output
    )
    assert "Fix: Point Kion's SMTP host at email-smtp.eu-west-1..." in output


def test_adopt_check_fails_an_ses_host_of_another_region_than_the_identity(
    capsys, monkeypatch, onboarding, other_regions
):
    other_regions.servers["eu-west-1"].verified_identities.clear()
    onboarding["world"].kion.app_config["smtp_host"] = "email-smtp.eu-west-1.amazonaws.com"

    code, output = adopt(capsys, monkeypatch, onboarding, "--check", "--print-construct")

    assert code == 1
    assert (
        "in eu-west-1, the region of Kion's SMTP host, but example.com is verified in us-east-1"
        in output
    )


def test_check_fails_a_send_no_policy_allows_from_kions_address(capsys, onboarding):
    onboarding["iam"].put_user_policy(
        UserName="kion-ses-smtp",
        PolicyName="send",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "ses:SendRawEmail",
                        "Resource": "*",
                        "Condition": {"StringLike": {"ses:FromAddress": "*@other.example"}},
                    }
                ],
            }
        ),
    )

    code, output = check(capsys, onboarding)

    assert code == 1
    assert (
        "[FAIL] Send permission: kion-ses-smtp may not call ses:SendRawEmail from "
        "kion@example.com (implicitDeny): no policy allows it." in output
    )


def test_check_names_a_permissions_boundary_that_denies_the_send(capsys, onboarding):
    iam = onboarding["iam"]
    boundary = iam.create_policy(
        PolicyName="no-ses",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}],
            }
        ),
    )["Policy"]["Arn"]
    iam.put_user_permissions_boundary(UserName="kion-ses-smtp", PermissionsBoundary=boundary)

    code, output = check(capsys, onboarding)

    assert code == 1
    assert "the user's permissions boundary does not allow it" in output
    assert "Fix: Widen the user's permissions boundary to allow ses:SendRawEmail" in output


def test_check_names_a_key_recorded_nowhere_that_leaves_no_room(capsys, onboarding):
    other = onboarding["iam"].create_access_key(UserName="kion-ses-smtp")["AccessKey"]

    code, output = check(capsys, onboarding)

    assert code == 1
    assert (
        "[FAIL] Access keys: kion-ses-smtp already has 2 access keys, so a rotation cannot make "
        f"a new one; recorded nowhere (possibly another consumer): {other['AccessKeyId']} "
        "(never used)." in output
    )


def test_check_fails_a_kion_key_that_may_not_write_the_settings(capsys, onboarding):
    onboarding["world"].kion.fail_requests(403, methods=["PATCH"])

    code, output = check(capsys, onboarding)

    assert code == 1
    assert "[FAIL] Kion settings access: Kion at" in output
    assert "refused PATCH /api/v3/app-config (403)" in output
    assert onboarding["world"].kion.app_config["smtp_username"]  # left as it was


def test_check_fails_a_kion_that_cannot_renew_its_key(capsys, onboarding):
    onboarding["world"].kion.app_config["app_api_key_creation_enabled"] = False

    code, output = check(capsys, onboarding)

    assert code == 1
    assert "[FAIL] Kion key renewal: Kion has App API key creation switched off" in output


def test_check_before_the_kion_key_is_stored_names_set_kion_key(capsys, onboarding):
    world = onboarding["world"]
    boto3.client("secretsmanager").put_secret_value(
        SecretId=world.installation.kion_api_key_secret_id, SecretString='{"api_key": ""}'
    )

    code, output = check(capsys, onboarding)

    assert code == 1
    assert "holds no Kion App API key yet, so Kion's side cannot be checked." in output
    assert f"Fix: ses-smtp-rotator set-kion-key {world.secret_id}" in output


def test_check_takes_a_typed_kion_key_when_the_stored_one_may_not_be_read(
    capsys, monkeypatch, onboarding
):
    world = onboarding["world"]
    monkeypatch.setattr("sys.stdin", io.StringIO(world.kion.api_key + "\n"))

    code, output = run_cli(capsys, "check", world.secret_id, "--kion-key")

    assert code == 0, output
    assert "[  ok] Kion settings access:" in output


def test_adopt_that_cannot_ask_aws_exits_5(capsys, monkeypatch, onboarding):
    code, output = adopt(capsys, monkeypatch, onboarding, "--yes", "--profile", "no-such-profile")

    assert code == 5
    assert "error: The AWS profile 'no-such-profile' is not configured." in output


def test_adopt_without_a_kion_key_is_a_usage_error(capsys, monkeypatch, onboarding):
    code, output = adopt(capsys, monkeypatch, onboarding, "--yes", api_key="")

    assert code == 2
    assert "error: no Kion App API key given (it must be one word)." in output
    assert onboarding["world"].kion.request_log == []


def test_the_send_check_names_a_service_control_policy_that_denies_it(onboarding):
    organizations = boto3.client("organizations")
    organizations.create_organization(FeatureSet="ALL")
    member = organizations.create_account(AccountName="mail", Email="mail@example.com")[
        "CreateAccountStatus"
    ]["AccountId"]
    deny_ses = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Deny", "Action": "ses:*", "Resource": "*"}],
        }
    )
    scp = organizations.create_policy(
        Name="no-ses", Type="SERVICE_CONTROL_POLICY", Description="", Content=deny_ses
    )["Policy"]["PolicySummary"]["Id"]
    organizations.attach_policy(PolicyId=scp, TargetId=member)
    credentials = boto3.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{member}:role/OrganizationAccountAccessRole",
        RoleSessionName="onboarding",
    )["Credentials"]
    iam = boto3.client(
        "iam",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    iam.create_user(UserName="sender")
    iam.put_user_policy(
        UserName="sender", PolicyName="send", PolicyDocument=json.dumps(SEND_POLICY)
    )

    finding = onboarding_checks.check_send_permission(
        iam, "us-east-1", "sender", "kion@example.com"
    )

    assert finding.verdict == onboarding_checks.FAIL
    assert "(explicitDeny): a service control policy of the organization denies it." in (
        finding.summary
    )
    assert finding.fix.startswith("Ask the organization's administrators")
