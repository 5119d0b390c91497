"""Secrets Manager's staging labels on moto's secrets, moved as the real service moves them.

moto 5.x keeps its own idea of the current version (``default_version_id``) apart from the
labels, and ``UpdateSecretVersionStage`` does not update it. So after a rotation's finishSecret,
a ``PutSecretValue`` that makes a new version AWSCURRENT (the settings writer, ``set-kion-key``)
relabels the version the rotation replaced and leaves two versions AWSCURRENT; it also wipes
every other label of that version. The real service (API reference of ``PutSecretValue`` and
``UpdateSecretVersionStage``):

- each label sits on one version at a time: giving it to one version takes it off the other;
- AWSCURRENT moves from the version that carries it, and AWSPREVIOUS follows to that version;
  the labels it carries besides (AWSPENDING, custom ones) stay where they are;
- ``UpdateSecretVersionStage`` moving a label that another version carries needs
  ``RemoveFromVersionId`` naming that version, and refuses otherwise;
- moving AWSCURRENT onto the AWSPENDING version leaves AWSPENDING there: the call changes only
  the label it names (aws-samples/aws-secrets-manager-rotation-lambdas issue 168). Whatever
  cleans it up later is not something a rotation function may count on, so the double never does.

:func:`install_label_moves` patches moto's classes once per process (in process and moto's
server alike); the local rotation service, the demo and the test suite install it.
"""

from __future__ import annotations

from typing import Any

from moto.secretsmanager.exceptions import InvalidParameterException, SecretNotFoundException
from moto.secretsmanager.models import FakeSecret, SecretsManagerBackend

CURRENT = "AWSCURRENT"
PREVIOUS = "AWSPREVIOUS"


def install_label_moves() -> None:
    """Make every moto secret move labels as Secrets Manager does (idempotent)."""
    FakeSecret.reset_default_version = _put_current  # type: ignore[method-assign]
    SecretsManagerBackend.update_secret_version_stage = _update_version_stage  # type: ignore[method-assign]


def holder(secret: FakeSecret, stage: str) -> str | None:
    """The version that carries ``stage``, or None."""
    return next(
        (vid for vid, version in secret.versions.items() if stage in version["version_stages"]),
        None,
    )


def _put_current(secret: FakeSecret, secret_version: dict[str, Any], version_id: str) -> None:
    """A new value stored with AWSCURRENT among its labels (PutSecretValue, UpdateSecret)."""
    stages = list(dict.fromkeys(secret_version["version_stages"]))
    replaced = holder(secret, CURRENT)
    for stage in stages:
        _take_off_others(secret, stage, version_id)
    if replaced is not None and replaced != version_id:
        _take_off_others(secret, PREVIOUS, version_id)
        secret.versions[replaced]["version_stages"].append(PREVIOUS)
    secret_version["version_stages"] = stages
    secret.versions[version_id] = secret_version
    secret.default_version_id = version_id


def _update_version_stage(
    backend: SecretsManagerBackend,
    secret_id: str,
    version_stage: str,
    remove_from_version_id: str,
    move_to_version_id: str,
) -> tuple[str, str]:
    """UpdateSecretVersionStage as the API reference describes it."""
    if secret_id not in backend.secrets:
        raise SecretNotFoundException()
    secret = backend.secrets[secret_id]
    for version_id in (remove_from_version_id, move_to_version_id):
        if version_id and version_id not in secret.versions:
            raise InvalidParameterException(f"Not a valid version: {version_id}")
    carrier = holder(secret, version_stage)
    if remove_from_version_id and carrier != remove_from_version_id:
        raise InvalidParameterException(
            f"Version stage {version_stage} not found in version {remove_from_version_id}"
        )
    if move_to_version_id and carrier not in (None, move_to_version_id, remove_from_version_id):
        raise InvalidParameterException(
            f"The parameter RemoveFromVersionId can't be empty. Staging label {version_stage} is "
            f"currently attached to version {carrier}, so you must explicitly reference that "
            "version in RemoveFromVersionId."
        )
    if carrier == move_to_version_id:
        return secret.arn, secret.name  # already there: nothing moves
    if remove_from_version_id:
        secret.versions[remove_from_version_id]["version_stages"].remove(version_stage)
    if move_to_version_id:
        secret.versions[move_to_version_id]["version_stages"].append(version_stage)
    if version_stage == CURRENT:
        if remove_from_version_id:
            _take_off_others(secret, PREVIOUS, remove_from_version_id)
            secret.versions[remove_from_version_id]["version_stages"].append(PREVIOUS)
        secret.default_version_id = move_to_version_id
    return secret.arn, secret.name


def _take_off_others(secret: FakeSecret, stage: str, keep_on: str) -> None:
    for version_id, version in secret.versions.items():
        if version_id != keep_on and stage in version["version_stages"]:
            version["version_stages"].remove(stage)
