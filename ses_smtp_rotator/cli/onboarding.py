"""Onboarding: what an installation's settings are, found from a hand-configured Kion, and
whether the first rotation can succeed, checked before anything is deployed.

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
from ses_smtp_rotator.functions.errors import RotationError
from ses_smtp_rotator.functions.services.kion_settings import KionClient, KionSmtpSettings
from ses_smtp_rotator.functions.services.ses_hosts import SesSmtpHost, ses_smtp_host

PASS, FAIL, UNKNOWN = "pass", "fail", "cannot tell"
_MARKS = {PASS: "ok", FAIL: "FAIL", UNKNOWN: "?"}
# Codes with which AWS (or a double that lacks the call) says the call is not there.
_NOT_IMPLEMENTED = frozenset({"NotImplemented", "InvalidAction", "UnknownOperationException"})
IAM_KEY_LIMIT = 2


class OnboardingError(RotationError):
    """Kion's settings cannot become an installation (the cause and the fix say why)."""


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

    def reasons(self) -> list[str]:
        """Why each setting is what it is, in the operator's words."""
        return [
            f"Kion at {self.kion_url} sends through {self.smtp.host}:{self.smtp.port or 587} "
            f"as {self.smtp.username}, from {self.smtp.from_address or '(no from address)'}.",
            f"{self.host.host} is {self.host}, so ses_region is {self.ses_region}.",
            f"IAM says access key {self.smtp.username} belongs to user {self.iam_user_name}.",
        ]


def ses_host_of(smtp: KionSmtpSettings, kion_url: str) -> SesSmtpHost:
    """The SES SMTP endpoint Kion sends through; an error when Kion is not on SES."""
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
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("AccessDenied", "AccessDeniedException"):
            raise OnboardingError(
                f"IAM refused iam:GetAccessKeyLastUsed on {access_key_id} to these credentials.",
                "Run adopt with credentials allowed iam:GetAccessKeyLastUsed in the account "
                "that owns Kion's key, or pass --iam-user-name.",
            ) from None
        user_name = None
    if not user_name:
        raise OnboardingError(
            f"Kion's SMTP username {access_key_id} is an access key of no IAM user in the "
            "account these credentials reach.",
            "Run adopt with credentials of the account that owns Kion's SES key (--profile), "
            "or check that Kion's SMTP username is the key's access key id.",
        )
    return str(user_name)


def adopt(kion: KionClient, iam: Any, iam_user_name: str | None = None) -> Adoption:
    """Read Kion's SMTP settings and derive the installation's settings from them."""
    smtp = kion.smtp_settings()
    host = ses_host_of(smtp, kion.kion_url)
    user = iam_user_name or owner_of_key(iam, smtp.username)
    return Adoption(kion.kion_url, smtp, host, user)


def _aws_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _cannot_ask(name: str, call: str, error: Exception) -> Finding:
    if isinstance(error, ClientError):
        code = _aws_code(error)
        if code in _NOT_IMPLEMENTED:
            why = f"{call} is not answered here ({code})"
        else:
            why = f"{call} was refused: {code}"
    else:
        why = f"{call} failed before AWS answered: {error}"
    return Finding(
        name, UNKNOWN, why + ".", f"Run check with credentials allowed {call} in the SES account."
    )


def check_ses_account(sesv2: Any, region: str) -> Finding:
    """SES sending is enabled in ``region``, the account is out of the sandbox and not paused."""
    name = "SES account"
    try:
        account = sesv2.get_account()
    except (ClientError, BotoCoreError) as error:
        return _cannot_ask(name, "ses:GetAccount", error)
    if not account.get("SendingEnabled", False):
        return Finding(
            name,
            FAIL,
            f"sending is paused for the account in {region} (status "
            f"{account.get('EnforcementStatus', 'unknown')}).",
            f"Resolve the pause in the SES console of {region} (Account dashboard), then check "
            "again.",
        )
    if not account.get("ProductionAccessEnabled", False):
        return Finding(
            name,
            FAIL,
            f"the account is in the SES sandbox in {region}: Kion may send only to verified "
            "addresses.",
            f"Request production access for SES in {region} (SES console, Account dashboard).",
        )
    return Finding(name, PASS, f"sending enabled, production access in {region}.")


def check_identity(sesv2: Any, region: str, from_address: str | None) -> Finding:
    """Kion's from-address, or its domain, is a verified SES identity in ``region``."""
    name = "Sender identity"
    if not from_address or "@" not in from_address:
        return Finding(
            name,
            FAIL,
            f"Kion's from address is {from_address or 'empty'}.",
            "Set Kion's SMTP from address to an address of a verified SES identity.",
        )
    domain = from_address.rsplit("@", 1)[1]
    refusals: list[Finding] = []
    for identity in (from_address, domain):
        try:
            found = sesv2.get_email_identity(EmailIdentity=identity)
        except ClientError as error:
            if _aws_code(error) == "NotFoundException":
                continue
            refusals.append(_cannot_ask(name, "ses:GetEmailIdentity", error))
            continue
        except BotoCoreError as error:
            return _cannot_ask(name, "ses:GetEmailIdentity", error)
        if found.get("VerifiedForSendingStatus"):
            return Finding(name, PASS, f"{identity} is verified for sending in {region}.")
        return Finding(
            name,
            FAIL,
            f"{identity} is an SES identity in {region} but not verified for sending.",
            f"Finish verifying {identity} in SES {region} (the DNS records or the link sent).",
        )
    if refusals:
        return refusals[0]
    return Finding(
        name,
        FAIL,
        f"neither {from_address} nor {domain} is an SES identity in {region}.",
        f"Verify {domain} (or {from_address}) in SES {region}, or point Kion at the region "
        "where it is verified.",
    )


def check_send_permission(iam: Any, user_arn: str, from_address: str | None) -> Finding:
    """The IAM user may call ses:SendRawEmail as Kion's sender (policies, boundary, SCPs)."""
    name = "Send permission"
    context = (
        [
            {
                "ContextKeyName": "ses:FromAddress",
                "ContextKeyValues": [from_address],
                "ContextKeyType": "string",
            }
        ]
        if from_address
        else []
    )
    try:
        result = iam.simulate_principal_policy(
            PolicySourceArn=user_arn, ActionNames=["ses:SendRawEmail"], ContextEntries=context
        )
    except (ClientError, BotoCoreError) as error:
        return _cannot_ask(name, "iam:SimulatePrincipalPolicy", error)
    evaluations = result.get("EvaluationResults", [])
    decision = evaluations[0].get("EvalDecision", "implicitDeny") if evaluations else "none"
    if decision == "allowed":
        return Finding(name, PASS, f"{user_arn} may call ses:SendRawEmail.")
    detail = evaluations[0] if evaluations else {}
    if detail.get("OrganizationsDecisionDetail", {}).get("AllowedByOrganizations") is False:
        why, fix = "a service control policy denies it", "Ask the organization's admins to allow"
    elif (
        detail.get("PermissionsBoundaryDecisionDetail", {}).get("AllowedByPermissionsBoundary")
        is False
    ):
        why, fix = "the user's permissions boundary denies it", "Widen the boundary to allow"
    else:
        why, fix = f"its policies give {decision}", "Attach a policy allowing"
    return Finding(
        name,
        FAIL,
        f"{user_arn} may not call ses:SendRawEmail from {from_address or 'its sender'}: {why}.",
        f"{fix} ses:SendRawEmail for {user_arn} (from {from_address or 'Kion sender'}).",
    )


def check_key_room(iam: Any, user_name: str, recorded: Iterable[str]) -> Finding:
    """The user's key count leaves room for a rotation; keys recorded nowhere are named."""
    name = "Access keys"
    try:
        keys = iam.list_access_keys(UserName=user_name)["AccessKeyMetadata"]
    except (ClientError, BotoCoreError) as error:
        return _cannot_ask(name, "iam:ListAccessKeys", error)
    known = set(recorded)
    others = [key["AccessKeyId"] for key in keys if key["AccessKeyId"] not in known]
    described = []
    for key_id in others:
        try:
            last = iam.get_access_key_last_used(AccessKeyId=key_id)["AccessKeyLastUsed"]
            when = last.get("LastUsedDate")
            described.append(
                f"{key_id} (last used {when:%Y-%m-%d} by {last.get('ServiceName')})"
                if when
                else f"{key_id} (never used)"
            )
        except (ClientError, BotoCoreError):
            described.append(f"{key_id} (last use unknown)")
    if len(keys) < IAM_KEY_LIMIT:
        note = f"; not Kion's: {', '.join(described)}" if described else ""
        return Finding(name, PASS, f"{user_name} has {len(keys)} of {IAM_KEY_LIMIT} keys{note}.")
    return Finding(
        name,
        FAIL,
        f"{user_name} already has {len(keys)} keys, so a rotation cannot make a new one; "
        f"recorded nowhere (possibly another consumer): {', '.join(described) or 'none'}.",
        f"Find out who uses {', '.join(others) or 'the other key'}, and delete or move it "
        f"before the first rotation; IAM allows {IAM_KEY_LIMIT} keys per user.",
    )


def check_kion_access(kion: KionClient, app_config: dict[str, Any] | None) -> Finding:
    """Kion's API key reads the settings; the key can renew itself (creation on, lifespan)."""
    name = "Kion API key"
    if app_config is None:
        try:
            app_config = kion.app_config()
        except RotationError as error:
            return Finding(name, FAIL, error.cause, error.fix)
    if app_config.get("app_api_key_creation_enabled") is False:
        return Finding(
            name,
            FAIL,
            "Kion has App API key creation switched off, so the key cannot renew itself and "
            "dies at the end of its lifespan.",
            "Switch on app_api_key_creation_enabled in Kion's settings (App API keys).",
        )
    lifespan = app_config.get("app_api_key_lifespan")
    limit = app_config.get("app_api_key_limit")
    return Finding(
        name,
        PASS,
        f"reads the SMTP settings; keys live {lifespan or 'unlimited'} days, at most "
        f"{limit or 'unlimited'} per user. Writing the settings (Manage Kion System Settings) "
        "is proven by the first rotation only: Kion has no dry run.",
    )


def check_reachable(
    host: str,
    port: int,
    connect: Callable[[tuple[str, int], float], Any] = socket.create_connection,
) -> Finding:
    """Kion's SMTP host answers on its port from here (the function needs the same egress)."""
    name = "SES SMTP reachable"
    try:
        connect((host, port), 5.0).close()
    except OSError as error:
        return Finding(
            name,
            FAIL,
            f"{host}:{port} takes no connection from here: {error}.",
            f"The rotation function needs outbound TCP {port} to {host}: in a VPC, a NAT "
            "gateway or the SES SMTP interface endpoint; Lambda cannot use port 25.",
        )
    return Finding(
        name,
        PASS,
        f"{host}:{port} answers from here; in a VPC the function needs the same egress (NAT "
        "or the SES SMTP interface endpoint) and to Kion's address.",
    )


def exit_code(findings: Iterable[Finding]) -> int:
    """EXIT_FAILED when a check fails, EXIT_UNCHECKED when one could not be made, else OK."""
    verdicts = {finding.verdict for finding in findings}
    if FAIL in verdicts:
        return EXIT_FAILED
    return EXIT_UNCHECKED if UNKNOWN in verdicts else EXIT_OK


def user_arn(iam: Any, user_name: str) -> str:
    return str(iam.get_user(UserName=user_name)["User"]["Arn"])


def preconditions(
    aws: Any, kion: KionClient, adoption: Adoption, recorded_keys: Iterable[str]
) -> list[Finding]:
    """Every precondition of the first rotation, in the order an operator fixes them."""
    region = adoption.ses_region
    sesv2, iam = aws.client("sesv2", region), aws.client("iam")
    from_address = adoption.smtp.from_address
    try:
        arn = user_arn(iam, adoption.iam_user_name)
    except (ClientError, BotoCoreError) as error:
        send = _cannot_ask("Send permission", "iam:GetUser", error)
    else:
        send = check_send_permission(iam, arn, from_address)
    return [
        check_ses_account(sesv2, region),
        check_identity(sesv2, region, from_address),
        send,
        check_key_room(iam, adoption.iam_user_name, recorded_keys),
        check_kion_access(kion, None),
        check_reachable(adoption.host.host, adoption.smtp.port or 587),
    ]
