"""The AWS calls ``adopt`` and ``check`` make that moto lacks or answers unlike AWS, added to moto.

moto 5.2 has no SES v2 ``GetAccount``, no IAM ``SimulatePrincipalPolicy`` and no
``PutUserPermissionsBoundary``; its ``GetEmailIdentity`` calls every identity unverified for
sending, and its ``GetAccessKeyLastUsed`` finds keys of every account, not only the caller's.
:class:`OnboardingCalls` adds them to moto's response classes (in process, and on a moto server in
the same process), answering as the API references describe:

- ``GetAccount`` and ``GetEmailIdentity`` answer from the SES SMTP stand-in of the region (its
  ``sandbox``, ``sending_paused`` and ``verified_identities``), so what ``check`` predicts is what
  that stand-in does to a message after ``DATA``. A region without a stand-in is a new account's:
  in the sandbox, with nothing verified.
- ``SimulatePrincipalPolicy`` evaluates a user's inline, managed and group policies, its
  permissions boundary, and the service control policies moto's Organizations attaches to its
  account or the account's parents, for the actions, resources and context keys asked about:
  an explicit deny wins; otherwise the identity's policies must allow, and the boundary and the
  SCPs must not stop it. Conditions: the String operators (with ``IfExists`` and the
  ``ForAnyValue``/``ForAllValues`` set qualifiers); another operator never matches. A user the
  stand-in limits to senders (``SesSmtpServer.from_addresses``) is limited here too.
- ``GetAccessKeyLastUsed`` of a key no user of the caller's account holds answers
  ``NoSuchEntity``.

A moto server routes ``GetAccount`` once this is installed before its first SES v2 request (the
server builds each service's routes then); the route stays for the life of the process.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Iterator
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.iam.exceptions import NotFoundException as IAMNotFoundException
from moto.iam.models import iam_backends
from moto.iam.responses import IamResponse
from moto.organizations.models import organizations_backends
from moto.ses.exceptions import NotFoundException
from moto.ses.models import ses_backends
from moto.sesv2 import urls as sesv2_urls
from moto.sesv2.responses import SESV2Response

from .smtp_server import SesSmtpServer

ACCOUNT_PATH = "{0}/v2/email/account$"
ALLOWED, EXPLICIT_DENY, IMPLICIT_DENY = "allowed", "explicitDeny", "implicitDeny"
# A new account's SES quotas in the sandbox, and some production quotas.
SANDBOX_QUOTA = {"Max24HourSend": 200.0, "MaxSendRate": 1.0, "SentLast24Hours": 0.0}
PRODUCTION_QUOTA = {"Max24HourSend": 50000.0, "MaxSendRate": 14.0, "SentLast24Hours": 0.0}


class OnboardingCalls:
    """Adds the calls to moto, answering SES's from ``ses_servers`` (one per region)."""

    def __init__(self, ses_servers: Iterable[SesSmtpServer]) -> None:
        self.ses_servers = {(server.account_id, server.region): server for server in ses_servers}
        self._saved: dict[tuple[type, str], Any] = {}

    def install(self) -> OnboardingCalls:
        calls = self
        methods = {
            (SESV2Response, "get_account"): lambda response: calls.get_account(response),
            (SESV2Response, "get_email_identity"): lambda response: calls.get_email_identity(
                response
            ),
            (IamResponse, "simulate_principal_policy"): lambda response: (
                calls.simulate_principal_policy(response)
            ),
            (IamResponse, "put_user_permissions_boundary"): _put_user_permissions_boundary,
            (IamResponse, "get_access_key_last_used"): _get_access_key_last_used,
        }
        for (cls, name), method in methods.items():
            self._saved[(cls, name)] = cls.__dict__.get(name)
            setattr(cls, name, method)
        # moto's server routes by these paths; its catch-all for /v2/ does not reach this one.
        sesv2_urls.url_paths.setdefault(ACCOUNT_PATH, SESV2Response.dispatch)
        return self

    def uninstall(self) -> None:
        for (cls, name), original in self._saved.items():
            if original is None:
                delattr(cls, name)
            else:
                setattr(cls, name, original)
        self._saved.clear()

    def __enter__(self) -> OnboardingCalls:
        return self.install()

    def __exit__(self, *_: object) -> None:
        self.uninstall()

    def _server(self, account_id: str, region: str) -> SesSmtpServer | None:
        return self.ses_servers.get((account_id, region))

    def get_account(self, response: SESV2Response) -> str:
        server = self._server(response.current_account, response.region)
        sandbox = server is None or server.sandbox
        paused = server is not None and server.sending_paused
        return json.dumps(
            {
                "DedicatedIpAutoWarmupEnabled": False,
                "EnforcementStatus": "SHUTDOWN" if paused else "HEALTHY",
                "ProductionAccessEnabled": not sandbox,
                "SendQuota": SANDBOX_QUOTA if sandbox else PRODUCTION_QUOTA,
                "SendingEnabled": not paused,
                "SuppressionAttributes": {"SuppressedReasons": []},
            }
        )

    def get_email_identity(self, response: SESV2Response) -> str:
        name = response._get_param("EmailIdentity")
        server = self._server(response.current_account, response.region)
        known = {
            identity.lower()
            for identity in ses_backends[response.current_account][response.region].email_identities
        }
        verified = server is not None and name.lower() in {
            identity.lower() for identity in server.verified_identities
        }
        if not verified and name.lower() not in known:
            raise NotFoundException(f"Email identity {name} does not exist.")
        return json.dumps(
            {
                "IdentityType": "EMAIL_ADDRESS" if "@" in name else "DOMAIN",
                "FeedbackForwardingStatus": True,
                "VerifiedForSendingStatus": verified,
                "VerificationStatus": "SUCCESS" if verified else "PENDING",
                "DkimAttributes": {"SigningEnabled": False, "Status": "NOT_STARTED"},
                "Policies": {},
                "Tags": [],
            }
        )

    def simulate_principal_policy(self, response: IamResponse) -> ActionResult:
        source_arn = response._get_param("PolicySourceArn")
        actions = response._get_param("ActionNames", [])
        resources = response._get_param("ResourceArns") or ["*"]
        context = {
            entry["ContextKeyName"].lower(): [str(v) for v in entry.get("ContextKeyValues", [])]
            for entry in response._get_param("ContextEntries", [])
        }
        backend = iam_backends[response.current_account][response.partition]
        user_name = source_arn.rsplit("/", 1)[-1] if ":user/" in source_arn else ""
        user = backend.users.get(user_name)
        if user is None or user.arn != source_arn:
            raise IAMNotFoundException(f"The user with ARN {source_arn} cannot be found.")
        identity = list(_user_statements(backend, user))
        boundary = _boundary_statements(backend, user)
        scps = _scp_statement_sets(response.current_account)
        senders = self._allowed_senders(response.current_account, user_name)
        results = []
        for action in actions:
            for resource in resources:
                results.append(
                    _evaluate(action, resource, context, identity, boundary, scps, senders)
                )
        return ActionResult({"EvaluationResults": results, "IsTruncated": False})

    def _allowed_senders(self, account_id: str, user_name: str) -> set[str] | None:
        limits = [
            server.from_addresses[user_name]
            for (account, _), server in self.ses_servers.items()
            if account == account_id and user_name in server.from_addresses
        ]
        return set().union(*limits) if limits else None


def _put_user_permissions_boundary(response: IamResponse) -> ActionResult:
    user = response.backend.get_user(response._get_param("UserName"))
    user.permissions_boundary_arn = response._get_param("PermissionsBoundary")
    return EmptyResult()


def _get_access_key_last_used(response: IamResponse) -> ActionResult:
    access_key_id = response._get_param("AccessKeyId")
    for user in response.backend.users.values():
        for key in user.access_keys:
            if key.access_key_id == access_key_id:
                used = key.last_used
                last_used = (
                    {
                        "LastUsedDate": used.timestamp,
                        "Region": used.region,
                        "ServiceName": used.service,
                    }
                    if used
                    else {"Region": "N/A", "ServiceName": "N/A"}
                )
                return ActionResult({"UserName": user.name, "AccessKeyLastUsed": last_used})
    raise IAMNotFoundException(f"The Access Key with id {access_key_id} cannot be found")


def _statements(document: str | dict[str, Any]) -> Iterator[dict[str, Any]]:
    parsed = json.loads(document) if isinstance(document, str) else document
    statements = parsed.get("Statement", [])
    yield from [statements] if isinstance(statements, dict) else statements


def _managed_document(policy: Any) -> str:
    return next(v.document for v in policy.versions if v.version_id == policy.default_version_id)


def _user_statements(backend: Any, user: Any) -> Iterator[dict[str, Any]]:
    for document in user.policies.values():
        yield from _statements(document)
    for policy in user.managed_policies.values():
        yield from _statements(_managed_document(policy))
    for group in backend.get_groups_for_user(user.name):
        for document in group.policies.values():
            yield from _statements(document)
        for policy in group.managed_policies.values():
            yield from _statements(_managed_document(policy))


def _boundary_statements(backend: Any, user: Any) -> list[dict[str, Any]] | None:
    arn = getattr(user, "permissions_boundary_arn", None)
    if not arn:
        return None
    return list(_statements(_managed_document(backend.get_policy(arn))))


def _scp_statement_sets(account_id: str) -> list[list[dict[str, Any]]]:
    """The SCPs that apply to ``account_id``: one list per level (root, OUs, account), each of
    which must allow; none outside an organization."""
    for per_partition in organizations_backends.values():
        for organizations in per_partition.values():
            if organizations.org is None:
                continue
            account = next((a for a in organizations.accounts if a.id == account_id), None)
            if account is None:
                continue
            targets = [account.id]
            parent = account.parent_id
            while parent:
                targets.append(parent)
                unit = next((ou for ou in organizations.ou if ou.id == parent), None)
                parent = unit.parent_id if unit else None
            if organizations.org.master_account_id == account_id:
                return []  # SCPs never restrict the management account
            return [
                [
                    statement
                    for policy in organizations.policies
                    if policy.type == "SERVICE_CONTROL_POLICY"
                    and target in {attached.id for attached in policy.attachments}
                    for statement in _statements(policy.content)
                ]
                for target in targets
            ]
    return []


def _evaluate(
    action: str,
    resource: str,
    context: dict[str, list[str]],
    identity: list[dict[str, Any]],
    boundary: list[dict[str, Any]] | None,
    scps: list[list[dict[str, Any]]],
    senders: set[str] | None,
) -> dict[str, Any]:
    decision = _decision(identity, action, resource, context)
    result: dict[str, Any] = {
        "EvalActionName": action,
        "EvalResourceName": resource,
        "MatchedStatements": [],
        "MissingContextValues": [],
    }
    if scps:
        scp_decisions = [_decision(level, action, resource, context) for level in scps]
        allowed_by_org = all(level == ALLOWED for level in scp_decisions)
        result["OrganizationsDecisionDetail"] = {"AllowedByOrganizations": allowed_by_org}
        if not allowed_by_org and decision != EXPLICIT_DENY:
            denied = EXPLICIT_DENY in scp_decisions
            decision = EXPLICIT_DENY if denied else IMPLICIT_DENY
    if boundary is not None:
        bounded = _decision(boundary, action, resource, context)
        result["PermissionsBoundaryDecisionDetail"] = {
            "AllowedByPermissionsBoundary": bounded == ALLOWED
        }
        if bounded != ALLOWED and decision == ALLOWED:
            decision = bounded
    sender = context.get("ses:fromaddress", [""])[0].lower()
    if decision == ALLOWED and senders is not None and sender not in senders:
        decision = IMPLICIT_DENY
    result["EvalDecision"] = decision
    return result


def _decision(
    statements: list[dict[str, Any]], action: str, resource: str, context: dict[str, list[str]]
) -> str:
    applying = [s for s in statements if _applies(s, action, resource, context)]
    if any(s.get("Effect") == "Deny" for s in applying):
        return EXPLICIT_DENY
    return ALLOWED if any(s.get("Effect") == "Allow" for s in applying) else IMPLICIT_DENY


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _matches_any(patterns: list[str], value: str, *, case: bool) -> bool:
    if case:
        return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)
    return any(fnmatch.fnmatchcase(value.lower(), pattern.lower()) for pattern in patterns)


def _applies(
    statement: dict[str, Any], action: str, resource: str, context: dict[str, list[str]]
) -> bool:
    if "Action" in statement:
        if not _matches_any(_listed(statement["Action"]), action, case=False):
            return False
    elif _matches_any(_listed(statement.get("NotAction")), action, case=False):
        return False
    if "Resource" in statement:
        if not _matches_any(_listed(statement["Resource"]), resource, case=True):
            return False
    elif "NotResource" in statement and _matches_any(
        _listed(statement["NotResource"]), resource, case=True
    ):
        return False
    return all(
        _condition_holds(operator, key, _listed(expected), context)
        for operator, tests in statement.get("Condition", {}).items()
        for key, expected in tests.items()
    )


def _condition_holds(
    operator: str, key: str, expected: list[str], context: dict[str, list[str]]
) -> bool:
    qualifier, _, name = operator.rpartition(":")
    if_exists = name.endswith("IfExists")
    name = name.removesuffix("IfExists")
    values = context.get(key.lower())
    if values is None:
        return if_exists or name.startswith("StringNot")
    negated = name.startswith("StringNot")
    base = name.replace("Not", "", 1) if negated else name

    def one(value: str) -> bool:
        if base == "StringEquals":
            hit = value in expected
        elif base == "StringEqualsIgnoreCase":
            hit = value.lower() in {e.lower() for e in expected}
        elif base == "StringLike":
            hit = _matches_any(expected, value, case=True)
        else:
            return False
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(one(value) for value in values)
    return any(one(value) for value in values)
