"""The installations of a deployment, found by the tags the stack puts on their secrets.

Every resource the stack makes for an installation carries ``ses-smtp-rotator:installation`` =
the installation's name (``ses_smtp_rotator.cdk``). A deployment is selected by
``ses-smtp-rotator:deployment``
= its name, or by the stack name CloudFormation tags every resource with
(``aws:cloudformation:stack-name``). The Kion API key secrets the stack makes carry the
installation tag too; they are told apart by their construct id (``KionApiKey`` in CloudFormation's
logical-id tag), their name (``.../kion-api-key/...``), their description, or having no rotation
function.

Reading needs ``secretsmanager:ListSecrets`` only: no secret value is read to list.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ses_smtp_rotator.cli.aws_access import NotFoundError, SetupError, asking
from ses_smtp_rotator.cli.secret_state import as_utc, named_as_kion_api_key

INSTALLATION_TAG = "ses-smtp-rotator:installation"
DEPLOYMENT_TAG = "ses-smtp-rotator:deployment"
STACK_TAG = "aws:cloudformation:stack-name"
_GLOB = frozenset("*?[")


@dataclass(frozen=True)
class Installation:
    """One installation secret, as ListSecrets describes it."""

    name: str
    secret_arn: str
    secret_name: str
    deployment: str | None
    stack: str | None
    rotation_function: str | None
    last_rotated: datetime | None

    def matches(self, pattern: str) -> bool:
        """Whether ``pattern`` (a glob, a name or an ARN) names this installation or its secret."""
        return any(
            fnmatch.fnmatchcase(candidate, pattern)
            for candidate in (self.name, self.secret_name, self.secret_arn)
        )


def list_installations(secretsmanager: Any, *, deployment: str | None = None) -> list[Installation]:
    """Every installation secret in the region, of ``deployment`` (a deployment or stack name)
    when given, sorted by installation name."""
    request: dict[str, Any] = {
        "Filters": [{"Key": "tag-key", "Values": [INSTALLATION_TAG]}],
        "MaxResults": 100,
    }
    found: list[Installation] = []
    with asking("secretsmanager:ListSecrets", "the account's secrets"):
        while True:
            page = secretsmanager.list_secrets(**request)
            for entry in page.get("SecretList", []):
                tags = {tag.get("Key"): tag.get("Value") for tag in entry.get("Tags", [])}
                if INSTALLATION_TAG not in tags or _is_api_key_secret(entry, tags):
                    continue
                installation = Installation(
                    name=tags[INSTALLATION_TAG] or entry["Name"],
                    secret_arn=entry["ARN"],
                    secret_name=entry["Name"],
                    deployment=tags.get(DEPLOYMENT_TAG),
                    stack=tags.get(STACK_TAG),
                    rotation_function=entry.get("RotationLambdaARN") or None,
                    last_rotated=as_utc(entry.get("LastRotatedDate")),
                )
                if deployment is None or deployment in (
                    installation.deployment,
                    installation.stack,
                ):
                    found.append(installation)
            if not page.get("NextToken"):
                break
            request["NextToken"] = page["NextToken"]
    return sorted(found, key=lambda installation: (installation.name, installation.secret_name))


def secret_id_for(secretsmanager: Any, text: str) -> str:
    """``text`` itself, unless no secret has that name but exactly one installation does: then
    that installation's secret ARN (so ``status prod-a`` works as well as the secret's name)."""
    if text.startswith("arn:"):
        return text
    try:
        # Credentials, permissions and an unreachable AWS fail here as they do for an ARN.
        with asking("secretsmanager:DescribeSecret", f"secret {text}"):
            secretsmanager.describe_secret(SecretId=text)
        return text
    except NotFoundError:
        pass
    try:
        named = [item for item in list_installations(secretsmanager) if item.name == text]
    except SetupError:
        return text
    return named[0].secret_arn if len(named) == 1 else text


def is_pattern(text: str) -> bool:
    return any(character in _GLOB for character in text)


def select(
    installations: list[Installation], patterns: list[str]
) -> tuple[list[Installation], list[str]]:
    """The installations any of ``patterns`` names, in listing order, and the patterns that named
    none. No patterns select every installation."""
    if not patterns:
        return list(installations), []
    chosen = [item for item in installations if any(item.matches(p) for p in patterns)]
    unmatched = [p for p in patterns if not any(item.matches(p) for item in installations)]
    return chosen, unmatched


def _is_api_key_secret(entry: dict[str, Any], tags: dict[str, Any]) -> bool:
    named = named_as_kion_api_key(
        str(entry.get("Name") or ""), str(entry.get("Description") or ""), tags
    )
    return named or not entry.get("RotationLambdaARN")
