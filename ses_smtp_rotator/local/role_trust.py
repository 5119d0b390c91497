"""STS AssumeRole on moto as the real service answers it: refused unless the role exists in its
account and its trust policy lets the caller in.

moto 5.x hands out credentials for any role ARN, existing or not, whoever asks (its
``assume_role`` says so); the credentials then act in the role's account. Real STS answers
AccessDenied ("... is not authorized to perform: sts:AssumeRole on resource ...") when the role
does not exist, when its trust does not name the caller, and when a service control policy
denies. :func:`role_trust_checked` makes moto refuse alike: it reads the role from moto's IAM
backend of the role's account and evaluates the trust's Allow statements for the caller, by
principal ARN (a role's sessions count as the role) and by an ``aws:PrincipalArn`` condition
(StringEquals, StringLike, ArnEquals, ArnLike). Explicit denies and other condition keys are not
modelled: a statement with another condition is not taken to allow.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from fnmatch import fnmatchcase
from typing import Any

from moto.core.exceptions import ServiceException
from moto.iam.models import iam_backends
from moto.sts.responses import TokenResponse

_EQUALS = ("StringEquals", "ArnEquals")
_LIKE = ("StringLike", "ArnLike")


class AccessDenied(ServiceException):
    code = "AccessDenied"


@contextmanager
def role_trust_checked() -> Iterator[None]:
    """While open, moto's STS refuses AssumeRole as the real one does."""
    original = TokenResponse.assume_role

    def assume_role(response: TokenResponse) -> Any:
        caller = _caller_arn(response)
        role_arn = response._get_param("RoleArn")
        if not trusts(role_arn, caller):
            raise AccessDenied(
                f"User: {caller} is not authorized to perform: sts:AssumeRole on resource: "
                f"{role_arn}"
            )
        return original(response)

    TokenResponse.assume_role = assume_role  # type: ignore[method-assign]
    try:
        yield
    finally:
        TokenResponse.assume_role = original  # type: ignore[method-assign]


def trusts(role_arn: str, caller_arn: str) -> bool:
    """Whether the role ``role_arn`` exists and its trust policy lets ``caller_arn`` assume it."""
    parts = role_arn.split(":", 5)
    if len(parts) != 6 or not parts[5].startswith("role/"):
        return False
    partition, account = parts[1], parts[4]
    role = next(
        (r for r in iam_backends[account][partition].get_roles() if r.arn == role_arn), None
    )
    if role is None:
        return False
    policy = role.assume_role_policy_document
    document = json.loads(policy) if isinstance(policy, str) else policy
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    principal = _as_role(caller_arn)
    return any(_allows(statement, principal) for statement in statements)


def _allows(statement: dict[str, Any], principal: str) -> bool:
    actions = _listed(statement.get("Action"))
    if statement.get("Effect") != "Allow" or not {"sts:AssumeRole", "sts:*", "*"} & actions:
        return False
    named = _listed((statement.get("Principal") or {}).get("AWS"))
    if not ("*" in named or principal in named):
        return False
    for operator, conditions in (statement.get("Condition") or {}).items():
        for key, values in conditions.items():
            if key.lower() != "aws:principalarn" or operator not in (*_EQUALS, *_LIKE):
                return False
            patterns = _listed(values)
            if operator in _EQUALS and principal not in patterns:
                return False
            if operator in _LIKE and not any(fnmatchcase(principal, p) for p in patterns):
                return False
    return True


def _listed(value: Any) -> set[str]:
    if value is None:
        return set()
    return {value} if isinstance(value, str) else set(value)


def _caller_arn(response: TokenResponse) -> str:
    _, arn, _ = response.backend.get_caller_identity(response.get_access_key(), response.region)
    return str(arn)


def _as_role(caller_arn: str) -> str:
    """A role session's ARN (``arn:aws:sts::A:assumed-role/Name/session``) as its role's ARN,
    path included, as trust policies name it; any other principal as it is."""
    prefix, _, rest = caller_arn.partition(":assumed-role/")
    if not rest:
        return caller_arn
    partition, account = prefix.split(":")[1], prefix.split(":")[4]
    name = rest.split("/", 1)[0]
    role = next((r for r in iam_backends[account][partition].get_roles() if r.name == name), None)
    return role.arn if role is not None else f"arn:{partition}:iam::{account}:role/{name}"
