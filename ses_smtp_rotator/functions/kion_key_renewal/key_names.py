"""The names a renewal gives the Kion API keys it creates, and which names are this deployment's.

A key is named ``ses-smtp-rotator/<deployment>/<secret name>/<version>``: the deployment is a
digest of the Kion API key secret's ARN, so it differs between accounts, regions and stacks even
where the secret names are equal (a DR pair, a test stack pointed at the production Kion), and one
deployment's renewal never takes another's keys for its own.

Before 0.2 keys were named ``ses-smtp-rotator/<secret name>/<version>``, which two deployments
can share. Such a name still counts as this secret's while its version is one of this secret's
labelled versions or the renewal's own (the key of a lost reply from before the upgrade): another
deployment's version ids never match. 0.3 stops recognising those names.
"""

from __future__ import annotations

import hashlib
import re

from ses_smtp_rotator.functions.kion_key_renewal.key_secret import SecretIdentity

KEY_NAME_PREFIX = "ses-smtp-rotator"
VERSION_IN_NAME = 8  # characters of the version id in a key's name
DEPLOYMENT_IN_NAME = 12  # hex characters of the deployment digest in a key's name
_VERSION = rf"([^/]{{1,{VERSION_IN_NAME}}})"


def deployment_id(secret_arn: str) -> str:
    """A short digest of the secret's ARN (partition, region, account and name)."""
    return hashlib.sha256(secret_arn.encode()).hexdigest()[:DEPLOYMENT_IN_NAME]


def key_name(secret_arn: str, secret_name: str, version_id: str) -> str:
    """The name of the key a renewal of version ``version_id`` creates."""
    deployment = deployment_id(secret_arn)
    return f"{KEY_NAME_PREFIX}/{deployment}/{secret_name}/{version_id[:VERSION_IN_NAME]}"


def named_by_deployment(secret_arn: str, secret_name: str, name: str) -> bool:
    """Whether ``name`` is the name of a key a renewal of this very secret created (0.2 on)."""
    own = rf"{re.escape(KEY_NAME_PREFIX)}/{deployment_id(secret_arn)}/{re.escape(secret_name)}"
    return re.fullmatch(rf"{own}/{_VERSION}", name) is not None


def made_by_renewal_of(identity: SecretIdentity, name: str, token: str) -> bool:
    """Whether a key named ``name`` was made by a renewal of this secret: named with its
    deployment, or named the old way with one of its labelled versions or ``token``."""
    if named_by_deployment(identity.arn, identity.name, name):
        return True
    legacy = re.fullmatch(
        rf"{re.escape(KEY_NAME_PREFIX)}/{re.escape(identity.name)}/{_VERSION}", name
    )
    if legacy is None:
        return False
    versions = {version[:VERSION_IN_NAME] for version in (*identity.stages, token)}
    return legacy.group(1) in versions
