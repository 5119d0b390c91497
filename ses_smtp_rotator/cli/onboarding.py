"""Onboarding: an installation's settings found from a hand-configured Kion, and whether the first
rotation can succeed, checked before anything is deployed.

``adopt`` and ``check`` share it. Each precondition is one :class:`Finding` that passes, fails or
cannot be told from here, with its cause and fix.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ses_smtp_rotator.cli.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_UNCHECKED
from ses_smtp_rotator.functions.errors import KionPermissionError, RotationError
from ses_smtp_rotator.functions.regions import partition_of, ses_regions
from ses_smtp_rotator.functions.services.kion_keys import KionKeyClient
from ses_smtp_rotator.functions.services.kion_settings import KionSmtpSettings
from ses_smtp_rotator.functions.services.ses_hosts import SesSmtpHost, ses_smtp_host
from ses_smtp_rotator.functions.services.ses_smtp import dialled_port

PASS, FAIL, UNKNOWN = "pass", "fail", "cannot tell"
_MARKS = {PASS: "ok", FAIL: "FAIL", UNKNOWN: "?"}
_ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException"})
IAM_KEY_LIMIT = 2
DEFAULT_PORT = 587
# Ports the construct takes as they are (25 is proven on 587: Lambda cannot dial it).
_KEPT_PORTS = frozenset({465, 2465, 2587})


class OnboardingError(Exception):
    """Kion's settings cannot become an installation (the cause and the fix say why)."""

    def __init__(self, cause: str, fix: str) -> None:
        self.cause = cause
        self.fix = fix
        super().__init__(f"{cause} Fix: {fix}")


@dataclass(frozen=True)
class Finding:
    """One precondition of the first rotation: its verdict, what was seen, and the fix."""

    name: str
    verdict: str  # PASS, FAIL or UNKNOWN
    summary: str
    fix: str = ""

    def lines(self) -> list[str]:
        text = [f"[{_MARKS[self.verdict]:>4}] {self.name}: {self.summary}"]
        if self.fix and self.verdict != PASS:
            text.append(f"       Fix: {self.fix}")
        return text


@dataclass(frozen=True)
class Adoption:
    """What ``adopt`` found: Kion's SMTP settings, the SES endpoint they name, the key's user."""

    kion_url: str
    smtp: KionSmtpSettings
    host: SesSmtpHost
    iam_user_name: str

    @property
    def ses_region(self) -> str:
        return self.host.region

    @property
    def smtp_port(self) -> int:
        """The port the installation declares: Kion's, except 25 (the function proves on 587)."""
        port = self.smtp.port or DEFAULT_PORT
        return port if port in _KEPT_PORTS else DEFAULT_PORT

    def reasons(self) -> list[str]:
        """Why each setting is what it is, in the operator's words."""
        port = self.smtp.port or DEFAULT_PORT
        found = [
            f"Kion at {self.kion_url} sends through {self.smtp.host}:{port} as "
            f"{self.smtp.username}, from {self.smtp.from_address or '(no from address)'}.",
            f"{self.host}: sesRegion {self.ses_region}"
            + ("" if self.host.kind == "public" else f", smtpHost {self.host.host}")
            + ".",
            f"IAM: access key {self.smtp.username} belongs to user {self.iam_user_name}.",
        ]
        if port != self.smtp_port:
            found.append(
                f"Kion uses port {port}; the function proves the credential on "
                f"{self.smtp_port} (Lambda cannot dial 25) and Kion may keep its port."
            )
        return found


def ses_host_of(smtp: KionSmtpSettings, kion_url: str) -> SesSmtpHost:
    """The SES SMTP endpoint Kion sends through; an error when Kion is not on SES."""
    if smtp.enabled is False:
        raise OnboardingError(
            f"Kion at {kion_url} has SMTP switched off (smtp_enabled is false), so it sends no "
            "mail to rotate a credential for.",
            "Switch SMTP on in Kion (Email and Notifications) with its SES settings, then run "
            "adopt again.",
        )
    found = ses_smtp_host(smtp.host or "")
    if found is None:
        raise OnboardingError(
            f"Kion at {kion_url} sends through {smtp.host or 'no SMTP host'}, which is not an "
            "Amazon SES SMTP endpoint, so there is no SES credential to rotate.",
            "Point Kion's SMTP host at email-smtp.<region>.amazonaws.com (or its FIPS or VPC "
            "endpoint name) with an SES SMTP credential, then run adopt again.",
        )
    return found


def owner_of_key(iam: Any, access_key_id: str) -> str:
    """The IAM user that owns ``access_key_id`` (``GetAccessKeyLastUsed`` names it)."""
    if not access_key_id:
        raise OnboardingError(
            "Kion's SMTP username is empty, so no access key tells which IAM user sends.",
            "Type the SES SMTP credential (access key id as username) into Kion's SMTP "
            "settings, or pass --iam-user-name.",
        )
    try:
        user_name = iam.get_access_key_last_used(AccessKeyId=access_key_id).get("UserName")
    except ClientError as error:
        if _aws_code(error) in _ACCESS_DENIED:
            raise OnboardingError(
                f"IAM refused iam:GetAccessKeyLastUsed on {access_key_id}: these credentials "
                "may not call it, or the key belongs to another account.",
                "Run adopt with credentials of the account that owns Kion's SES key, allowed "
                "iam:GetAccessKeyLastUsed (--profile), or pass --iam-user-name; a user in "
                "another account than the deployment's also needs that account as the "
                "installation's sesAccount in cdk.json.",
            ) from None
        if _aws_code(error) != "NoSuchEntity":
            raise
        user_name = None
    if not user_name:
        raise OnboardingError(
            f"Kion's SMTP username {access_key_id} is an access key of no IAM user in the "
            "account these credentials reach.",
            "Run adopt with credentials of the account that owns Kion's SES key (--profile; "
            "a user in another account than the deployment's also needs that account as the "
            "installation's sesAccount in cdk.json), or check that Kion's SMTP username is the "
            "key's access key id.",
        )
    return str(user_name)


def adopt(smtp: KionSmtpSettings, kion_url: str, iam: Any, iam_user_name: str | None) -> Adoption:
    """The installation's settings from Kion's SMTP settings and IAM."""
    host = ses_host_of(smtp, kion_url)
    return Adoption(kion_url, smtp, host, iam_user_name or owner_of_key(iam, smtp.username))


def _aws_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _cannot_ask(name: str, call: str, error: Exception) -> Finding:
    if isinstance(error, ClientError):
        why = f"{call} was refused: {_aws_code(error)}"
    else:
        why = f"{call} failed before AWS answered ({type(error).__name__})"
    return Finding(
        name, UNKNOWN, why + ".", f"Run the check with credentials allowed {call} (--profile)."
    )


def check_ses_account(sesv2: Any, region: str) -> Finding:
    """SES sending is enabled in ``region`` and the account is out of the sandbox."""
    name = "SES account"
    try:
        account = sesv2.get_account()
    except (ClientError, BotoCoreError) as error:
        return _cannot_ask(name, "ses:GetAccount", error)
    if not account.get("SendingEnabled", False):
        return Finding(
            name,
            FAIL,
            f"sending is paused for the account in {region} (enforcement status "
            f"{account.get('EnforcementStatus', 'unknown')}): SES refuses every message.",
            f"Resolve the pause in the SES console of {region} (Account dashboard), or resume "
            f"sending (aws sesv2 put-account-sending-attributes --sending-enabled --region "
            f"{region}) if your team paused it.",
        )
    if not account.get("ProductionAccessEnabled", False):
        return Finding(
            name,
            FAIL,
            f"the account is in the SES sandbox in {region}: the rotation's proof would pass "
            "(the mailbox simulator works there) but Kion's mail to unverified recipients is "
            "refused.",
            f"Request production access for SES in {region} (SES console, Account dashboard).",
        )
    return Finding(name, PASS, f"sending enabled, production access in {region}.")


def check_identity(
    sesv2_in: Callable[[str], Any], region: str, from_address: str | None
) -> Finding:
    """Kion's from-address, or its domain, is a verified SES identity in ``region``;
    ``sesv2_in(region)`` is an SES v2 client of a region."""
    name = "Sender identity"
    if not from_address or "@" not in from_address:
        return Finding(
            name,
            FAIL,
            f"Kion's from address is {from_address or 'empty'}.",
            "Set Kion's SMTP from address to an address of a verified SES identity.",
        )
    identities = (from_address, from_address.rsplit("@", 1)[1])
    try:
        found = _identity(sesv2_in(region), identities)
    except (ClientError, BotoCoreError) as error:
        return _cannot_ask(name, "ses:GetEmailIdentity", error)
    if found is not None and found[1]:
        return Finding(name, PASS, f"{found[0]} is verified for sending in {region}.")
    if found is not None:
        return Finding(
            name,
            FAIL,
            f"{found[0]} is an SES identity in {region} but not verified for sending: SES "
            f"refuses mail from {from_address}.",
            f"Finish verifying {found[0]} in SES {region} (its DNS records, or the link SES "
            "mailed), then check again.",
        )
    elsewhere = _verified_elsewhere(sesv2_in, region, identities)
    if elsewhere:
        return Finding(
            name,
            FAIL,
            f"neither {from_address} nor {identities[1]} is an SES identity in {region}, the "
            f"region of Kion's SMTP host, but {elsewhere[1]} is verified in {elsewhere[0]}: SES "
            "SMTP credentials and identities are bound to a region.",
            f"Point Kion's SMTP host at email-smtp.{elsewhere[0]}... and run adopt again, or "
            f"verify {identities[1]} in {region}.",
        )
    return Finding(
        name,
        FAIL,
        f"neither {from_address} nor {identities[1]} is an SES identity in {region}: SES refuses "
        f"mail from {from_address}.",
        f"Verify {identities[1]} (or {from_address}) in SES {region}, then check again.",
    )


def _identity(sesv2: Any, identities: Iterable[str]) -> tuple[str, bool] | None:
    """The first of ``identities`` SES knows, and whether it is verified for sending."""
    for identity in identities:
        try:
            found = sesv2.get_email_identity(EmailIdentity=identity)
        except ClientError as error:
            if _aws_code(error) == "NotFoundException":
                continue
            raise
        return identity, bool(found.get("VerifiedForSendingStatus"))
    return None


def _verified_elsewhere(
    sesv2_in: Callable[[str], Any], region: str, identities: tuple[str, str]
) -> tuple[str, str] | None:
    """Another region of the same partition where one of ``identities`` is verified."""
    partition = partition_of(region)
    for other in sorted(ses_regions()):
        if other == region or partition is None or partition_of(other) != partition:
            continue
        try:
            found = _identity(sesv2_in(other), identities)
        except (ClientError, BotoCoreError):
            continue  # a region the account has not opted into
        if found is not None and found[1]:
            return other, found[0]
    return None


def check_send_permission(
    iam: Any, region: str, user_name: str, from_address: str | None
) -> Finding:
    """The IAM user may call ses:SendRawEmail as Kion's sender (its policies, its permissions
    boundary and the organization's SCPs, as IAM's policy simulator weighs them)."""
    name = "Send permission"
    try:
        user_arn = str(iam.get_user(UserName=user_name)["User"]["Arn"])
    except (ClientError, BotoCoreError) as error:
        return _cannot_ask(name, "iam:GetUser", error)
    sender = from_address or ""
    partition, account = user_arn.split(":")[1], user_arn.split(":")[4]
    try:
        result = iam.simulate_principal_policy(
            PolicySourceArn=user_arn,
            ActionNames=["ses:SendRawEmail"],
            ResourceArns=[f"arn:{partition}:ses:{region}:{account}:identity/{sender or '*'}"],
            ContextEntries=[
                {
                    "ContextKeyName": "ses:FromAddress",
                    "ContextKeyValues": [sender],
                    "ContextKeyType": "string",
                }
            ],
        )
    except (ClientError, BotoCoreError) as error:
        return _cannot_ask(name, "iam:SimulatePrincipalPolicy", error)
    evaluation = (result.get("EvaluationResults") or [{}])[0]
    decision = evaluation.get("EvalDecision", "implicitDeny")
    if decision == "allowed":
        return Finding(name, PASS, f"{user_name} may call ses:SendRawEmail from {sender}.")
    if evaluation.get("OrganizationsDecisionDetail", {}).get("AllowedByOrganizations") is False:
        why, fix = (
            "a service control policy of the organization denies it",
            ("Ask the organization's administrators to let the account use ses:SendRawEmail"),
        )
    elif (
        evaluation.get("PermissionsBoundaryDecisionDetail", {}).get("AllowedByPermissionsBoundary")
        is False
    ):
        why, fix = (
            "the user's permissions boundary does not allow it",
            ("Widen the user's permissions boundary to allow ses:SendRawEmail"),
        )
    elif decision == "explicitDeny":
        why, fix = "a policy denies it", "Remove the Deny statement for ses:SendRawEmail"
    else:
        why, fix = (
            "no policy allows it",
            (
                f"Attach a policy allowing ses:SendRawEmail (ses:FromAddress {sender}) to "
                f"{user_name}"
            ),
        )
    return Finding(
        name,
        FAIL,
        f"{user_name} may not call ses:SendRawEmail from {sender or 'its sender'} ({decision}): "
        f"{why}. SES would answer Kion's mail with 554 Access denied.",
        f"{fix}, then check again.",
    )


def check_key_room(iam: Any, user_name: str, recorded: Iterable[str]) -> Finding:
    """The user's key count leaves room for a rotation; keys recorded nowhere are named."""
    name = "Access keys"
    try:
        keys = iam.list_access_keys(UserName=user_name)["AccessKeyMetadata"]
    except (ClientError, BotoCoreError) as error:
        return _cannot_ask(name, "iam:ListAccessKeys", error)
    known = {key for key in recorded if key}
    others = [key["AccessKeyId"] for key in keys if key["AccessKeyId"] not in known]
    described = [_last_use(iam, key_id) for key_id in others]
    if len(keys) < IAM_KEY_LIMIT:
        note = (
            f"; recorded nowhere (possibly another consumer): {', '.join(described)}"
            if described
            else ""
        )
        return Finding(
            name, PASS, f"{user_name} has {len(keys)} of {IAM_KEY_LIMIT} access keys{note}."
        )
    return Finding(
        name,
        FAIL,
        f"{user_name} already has {len(keys)} access keys, so a rotation cannot make a new one; "
        f"recorded nowhere (possibly another consumer): {', '.join(described) or 'none'}.",
        f"Find out who uses {', '.join(others) or 'the other key'}, and delete it or give that "
        f"consumer its own IAM user before the first rotation (IAM allows {IAM_KEY_LIMIT} keys "
        "per user).",
    )


def _last_use(iam: Any, access_key_id: str) -> str:
    try:
        last = iam.get_access_key_last_used(AccessKeyId=access_key_id)["AccessKeyLastUsed"]
    except (ClientError, BotoCoreError):
        return f"{access_key_id} (last use unknown)"
    when = last.get("LastUsedDate")
    if not when:
        return f"{access_key_id} (never used)"
    return f"{access_key_id} (last used {when:%Y-%m-%d} by {last.get('ServiceName')})"


def check_kion_settings_access(kion: KionKeyClient, smtp: KionSmtpSettings) -> Finding:
    """Kion's API key may read and write the SMTP settings (the sender written back unchanged)."""
    name = "Kion settings access"
    if not smtp.from_address:
        return Finding(
            name,
            UNKNOWN,
            "the key reads the SMTP settings; whether it may write them is not tried, since "
            "Kion has no sender to write back unchanged.",
            "Set Kion's SMTP from address, then check again.",
        )
    try:
        kion.rewrite_sender(smtp.from_address)
    except RotationError as error:
        return Finding(name, FAIL, error.cause, error.fix)
    return Finding(
        name,
        PASS,
        "the key reads the SMTP settings and may write them (smtp_from written back unchanged).",
    )


def check_kion_key_renewal(
    kion: KionKeyClient, app_config: dict[str, Any], api_key_id: int | None
) -> Finding:
    """The key can renew itself: creation switched on, keys listed, room under the user's limit."""
    name = "Kion key renewal"
    lifespan = app_config.get("app_api_key_lifespan")
    life = f"keys live {lifespan} days" if lifespan else "keys do not expire"
    if app_config.get("app_api_key_creation_enabled") is False:
        return Finding(
            name,
            FAIL,
            f"Kion has App API key creation switched off, so the key cannot renew itself ({life}).",
            "Switch on app_api_key_creation_enabled in Kion's settings (App API keys).",
        )
    try:
        keys = kion.list_keys()
    except KionPermissionError as error:
        return Finding(name, FAIL, error.cause, error.fix)
    except RotationError as error:
        return Finding(name, UNKNOWN, error.cause, error.fix)
    limit = app_config.get("app_api_key_limit")
    own = next((key for key in keys if key.id == api_key_id), None)
    if own is None or not isinstance(limit, int) or limit <= 0:
        unknown = "" if own or not limit else "; which of them is this key's cannot be told"
        return Finding(
            name, PASS, f"creation on, {life}, at most {limit or 'any number'} per user{unknown}."
        )
    held = sum(1 for key in keys if key.user_id == own.user_id)
    if held >= limit:
        return Finding(
            name,
            FAIL,
            f"the key's Kion user holds {held} App API keys, Kion's limit is {limit}: a renewal "
            "makes the new key before deleting the old one and would be refused.",
            "Delete an App API key of that user in Kion, or raise app_api_key_limit.",
        )
    return Finding(name, PASS, f"creation on, {life}; the key's user holds {held} of {limit} keys.")


def check_reachable(
    host: str,
    port: int,
    connect: Callable[[tuple[str, int], float], Any] = socket.create_connection,
) -> Finding:
    """The SES SMTP host answers on the port the function dials, from here."""
    name = "SES SMTP reachable"
    egress = (
        f"The function needs outbound TCP {port} to {host}: in a VPC, a NAT gateway or the SES "
        "SMTP interface endpoint (vpc.createSesSmtpEndpoint), and 443 to Kion and the AWS APIs."
    )
    try:
        connect((host, port), 5.0).close()
    except OSError as error:
        return Finding(
            name,
            UNKNOWN,
            f"{host}:{port} takes no connection from here ({type(error).__name__}); this "
            "machine's network may differ from the function's.",
            egress,
        )
    return Finding(name, PASS, f"{host}:{port} answers from here. {egress}")


def exit_code(findings: Iterable[Finding]) -> int:
    """EXIT_FAILED when a check fails, EXIT_UNCHECKED when one could not be made, else OK."""
    verdicts = {finding.verdict for finding in findings}
    if FAIL in verdicts:
        return EXIT_FAILED
    return EXIT_UNCHECKED if UNKNOWN in verdicts else EXIT_OK


def preconditions(
    aws: Any,
    kion: KionKeyClient,
    adoption: Adoption,
    *,
    recorded_keys: Iterable[str],
    api_key_id: int | None,
    proof_host: str,
    proof_port: int,
) -> list[Finding]:
    """Every precondition of the first rotation, in the order an operator fixes them."""
    region = adoption.ses_region
    iam = aws.client("iam")
    from_address = adoption.smtp.from_address
    try:
        app_config = kion.app_config()
    except RotationError as error:
        kion_findings = [Finding("Kion settings access", FAIL, error.cause, error.fix)]
    else:
        kion_findings = [
            check_kion_settings_access(kion, adoption.smtp),
            check_kion_key_renewal(kion, app_config, api_key_id),
        ]
    return [
        check_ses_account(aws.client("sesv2", region), region),
        check_identity(lambda other: aws.client("sesv2", other), region, from_address),
        check_send_permission(iam, region, adoption.iam_user_name, from_address),
        check_key_room(iam, adoption.iam_user_name, recorded_keys),
        *kion_findings,
        check_reachable(proof_host, dialled_port(proof_host, proof_port)),
    ]
