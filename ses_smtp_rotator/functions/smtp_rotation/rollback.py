"""Rollback: put the key a rotation replaced back into service while its grace window runs.

The rotation function does it (invoked with ``{"Action": "rollback", "SecretId": ...}``), so the
operator needs no IAM or Kion access: only ``lambda:InvokeFunction``. In order:

1. refuse unless AWSPREVIOUS holds the key AWSCURRENT's credential replaced, that key is still
   the user's, Inactive, and inside its window (``functions/retired_keys.py`` records when it was
   deactivated), and no rotation is unfinished;
2. store the restored credential as a new version labelled ROLLBACK (the record of what this
   rollback is doing; its id follows from the version rolled back from);
3. reactivate the previous key and prove it where Kion sends, by setSecret's rule;
4. give it to Kion and read Kion back;
5. make the ROLLBACK version AWSCURRENT (the rolled-back-from version becomes AWSPREVIOUS);
6. drop the restored key's retirement record, retire the key rolled back from as finishSecret
   retires a replaced key (deactivated and recorded, with a grace window of its own), and take
   the ROLLBACK label off.

Run again after a failure anywhere, it picks up from the ROLLBACK label. A refusal before Kion
got the previous key deactivates that key again, so Kion and AWSCURRENT keep the key they had.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from ses_smtp_rotator.functions.errors import (
    RollbackRefusedError,
    RotationError,
    RotationInProgressError,
    RotationStateError,
)
from ses_smtp_rotator.functions.installation_secret import InstallationSecret
from ses_smtp_rotator.functions.retired_keys import ended_windows, retired_keys
from ses_smtp_rotator.functions.services.iam_keys import UserAccessKeys
from ses_smtp_rotator.functions.services.secrets_store import (
    CURRENT,
    PENDING,
    ROLLBACK,
    InstallationSecrets,
    SecretVersion,
)
from ses_smtp_rotator.functions.smtp_rotation.steps import Rotation
from ses_smtp_rotator.functions.telemetry import logger, metrics

ROLLBACK_ACTION = "rollback"
_VERSION_NAMESPACE = uuid.UUID("5b1f0f0e-3c55-4d7e-9a57-2f0c1f9d6a11")


@dataclass(frozen=True)
class RollbackRequest:
    """``{"Action": "rollback", "SecretId": ..., "FromVersionId": ...}``. ``FromVersionId`` is
    the AWSCURRENT version the operator saw: a rollback repeated after it finished then reports
    it done instead of rolling back once more."""

    secret_id: str
    from_version_id: str | None = None

    @classmethod
    def parse(cls, event: dict[str, Any]) -> RollbackRequest:
        secret_id = event.get("SecretId")
        from_version_id = event.get("FromVersionId")
        if not isinstance(secret_id, str) or not secret_id:
            raise RotationStateError(
                "The rollback request names no SecretId.",
                'Invoke with {"Action": "rollback", "SecretId": "<installation secret>"}, or use '
                "ses-smtp-rotator rollback INSTALLATION.",
            )
        return cls(secret_id, from_version_id if isinstance(from_version_id, str) else None)


@dataclass(frozen=True)
class RollbackReport:
    """What a rollback did; no secret in it."""

    installation: str
    restored_access_key_id: str
    retired_access_key_id: str
    retired_deletion_after: datetime
    version_id: str
    already_done: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": "already-rolled-back" if self.already_done else "rolled-back",
            "installation": self.installation,
            "restored_access_key_id": self.restored_access_key_id,
            "retired_access_key_id": self.retired_access_key_id,
            "retired_deletion_after": self.retired_deletion_after.isoformat(),
            "version_id": self.version_id,
        }


def rollback_version_id(from_version_id: str) -> str:
    """The id of the version a rollback from ``from_version_id`` stores: the same every run."""
    return str(uuid.uuid5(_VERSION_NAMESPACE, f"rollback-from:{from_version_id}"))


def window_end(replaced_at: datetime, grace_days: float) -> datetime:
    """When a key's rollback window ends: ``grace_days`` after it was retired."""
    return replaced_at + timedelta(days=grace_days)


@dataclass
class Rollback:
    """One rollback of one installation secret. ``rotation`` lends its Kion client, setSecret's
    acceptance rule and finishSecret's retirement."""

    rotation: Rotation

    @property
    def secrets(self) -> InstallationSecrets:
        return self.rotation.secrets

    def run(self, request: RollbackRequest) -> RollbackReport:
        stages = self.secrets.version_stages()
        _refuse_if_rotating(stages)
        current = self.secrets.current()
        marked = next((vid for vid, labels in stages.items() if ROLLBACK in labels), None)
        from_version_id = request.from_version_id or current.version_id
        if current.version_id != from_version_id:
            if current.version_id != rollback_version_id(from_version_id):
                raise RollbackRefusedError(
                    f"AWSCURRENT of {self.secrets.secret_id} is version {current.version_id} "
                    f"now, not {from_version_id}, the one asked to roll back from.",
                    "Something rotated or rolled back meanwhile: check with ses-smtp-rotator "
                    "status, and roll back again if it is still needed.",
                )
            if marked != current.version_id:
                return self._report(current, already_done=True)
        if marked is not None and CURRENT in stages[marked]:
            return self._finish(current)
        target_id = rollback_version_id(current.version_id)
        if marked is not None and marked != target_id:
            logger.info("Taking off the label of an older, unfinished rollback", version=marked)
            self.secrets.unlabel(marked, ROLLBACK)
            marked = None
        if marked is None:
            self._mark(current, target_id, stages)
        return self._restore(current, target_id)

    # -- the steps ---------------------------------------------------------------------------

    def _mark(self, current: SecretVersion, target_id: str, stages: dict[str, list[str]]) -> None:
        """Check that the previous key may come back; record the rollback as a labelled version."""
        previous = self.secrets.previous()
        restored = self._restorable(current, previous)
        keys = {key.access_key_id: key for key in self._keys(current.secret).list()}
        key = keys.get(restored.access_key_id)
        if key is None:
            raise RollbackRefusedError(
                f"The previous key {restored.access_key_id} no longer exists (deleted by hand, "
                "or its grace window passed and it was deleted).",
                "There is no key to go back to; if the current key fails, rotate again: "
                f"ses-smtp-rotator rotate {self.secrets.secret_id} --wait.",
            )
        if key.active:
            raise RollbackRefusedError(
                f"The previous key {restored.access_key_id} is Active, though the rotation that "
                "replaced it deactivated it: someone reactivated it by hand.",
                "Find out what uses it. To go back to it anyway, deactivate it in IAM "
                f"(aws iam update-access-key --user-name {current.secret.iam_user_name} "
                f"--access-key-id {restored.access_key_id} --status Inactive) and roll back "
                "again; to keep the current key, leave it and delete the old one when unused.",
            )
        value = current.secret.with_credential(
            restored.access_key_id, restored.password, replaces=current.secret.access_key_id
        )
        if target_id in stages:
            self.secrets.label(target_id, ROLLBACK)
        else:
            self.secrets.put_labelled(target_id, value, ROLLBACK)
        logger.info(
            "Rolling back to the previous key",
            access_key_id=restored.access_key_id,
            replaced_access_key_id=current.secret.access_key_id,
        )

    def _restore(self, current: SecretVersion, target_id: str) -> RollbackReport:
        """Reactivate, prove, give to Kion, make AWSCURRENT; then finish."""
        target = self.secrets.version(target_id)
        if target is None:
            raise RotationStateError(
                f"The rollback's version {target_id} has no value.",
                "Run the rollback again.",
            )
        restored = target.secret
        keys = self._keys(restored)
        if restored.access_key_id not in {key.access_key_id for key in keys.list()}:
            self.secrets.unlabel(target_id, ROLLBACK)
            raise RollbackRefusedError(
                f"The previous key {restored.access_key_id} was deleted while the rollback ran.",
                "There is no key to go back to; Kion keeps the current key. Rotate again if "
                "the current key fails.",
            )
        keys.reactivate(restored.access_key_id)
        logger.info("Reactivated the previous key", access_key_id=restored.access_key_id)
        rotation = self.rotation
        kion = rotation._kion(restored)
        try:
            kion_smtp = rotation._kion_endpoint(restored)
            if kion_smtp.username not in (restored.access_key_id, current.secret.access_key_id):
                raise RollbackRefusedError(
                    f"Kion sends with key {kion_smtp.username or 'none'}, which is neither "
                    f"AWSCURRENT's ({current.secret.access_key_id}) nor the previous one.",
                    "Someone changed Kion's SMTP settings; put AWSCURRENT's credential back "
                    "into Kion (or rotate), then roll back if still needed.",
                )
            if kion_smtp.username != restored.access_key_id:
                rotation.prove_where_kion_sends(restored, kion_smtp, "previous")
                self._require_unchanged(current)
                self._give_kion(restored, current)
        except RotationError as error:
            raise self._undone(error, restored, current) from None
        rotation._require_kion_uses(restored, kion.smtp_settings(), check_password=True)
        logger.info("Kion sends with the previous key again", access_key_id=restored.access_key_id)
        stages = self._require_unchanged(current)
        if PENDING in stages[current.version_id]:
            # AWSPENDING may stay on the version a rotation made current; moved off it, that
            # label would read as a rotation in progress (and Secrets Manager refuse the next).
            self.secrets.unlabel(current.version_id, PENDING)
        self.secrets.make_current(target_id, current.version_id)
        logger.info("AWSCURRENT moved back", access_key_id=restored.access_key_id)
        return self._finish(self.secrets.current())

    def _give_kion(self, restored: InstallationSecret, current: SecretVersion) -> None:
        """PATCH Kion; when that fails, Kion's settings tell whether it took effect."""
        kion = self.rotation._kion(restored)
        try:
            kion.set_smtp_credential(restored.username, restored.password)
        except RotationError:
            if kion.smtp_settings().username != restored.access_key_id:
                raise
            logger.info("Kion took the previous key, though its reply said otherwise")

    def _finish(self, restored: SecretVersion) -> RollbackReport:
        """AWSCURRENT holds the previous key again: retire the key rolled back from, as
        finishSecret retires a replaced key, and take the ROLLBACK label off."""
        rotation = replace(self.rotation, token=restored.version_id)
        retirement = rotation._retirement(restored.secret)
        if restored.secret.access_key_id in retirement.records():
            retirement.forget(restored.secret.access_key_id)  # in service again, not retired
        replaced = self.secrets.previous()
        if replaced is not None and replaced.secret.access_key_id == restored.secret.replaces:
            kion_smtp = rotation._kion(restored.secret).smtp_settings()
            kion_username = rotation._require_kion_uses(
                restored.secret, kion_smtp, check_password=False
            )
            rotation._retire_replaced_key(replaced, restored.secret, kion_username)
        if ROLLBACK in self.secrets.version_stages().get(restored.version_id, []):
            self.secrets.unlabel(restored.version_id, ROLLBACK)
        metrics.add_metric("RollbackSucceeded", MetricUnit.Count, 1)
        logger.info(
            "Rolled back",
            access_key_id=restored.secret.access_key_id,
            retired_access_key_id=restored.secret.replaces,
        )
        return self._report(restored)

    # -- checks and answers ------------------------------------------------------------------

    def _restorable(
        self, current: SecretVersion, previous: SecretVersion | None
    ) -> InstallationSecret:
        """The previous version's credential, once it is sure this installation retired it
        within its window and it still works where the current settings send."""
        replaced = current.secret.replaces
        previous_key = previous.secret.access_key_id if previous is not None else ""
        if previous is None or not previous_key:
            if replaced:
                raise RollbackRefusedError(
                    f"The key AWSCURRENT replaced, {replaced}, was adopted from Kion on the "
                    "first rotation: this product never held its SMTP password, so it cannot "
                    "put it back.",
                    f"To go back by hand: reactivate {replaced} in IAM and paste its SMTP "
                    "password into Kion; or rotate again if the current key fails.",
                )
            raise RollbackRefusedError(
                f"{self.secrets.secret_id} has no previous credential to go back to.",
                "Nothing to roll back; rotate if the current key fails.",
            )
        if previous_key != replaced:
            raise RollbackRefusedError(
                f"AWSPREVIOUS holds key {previous_key}, but AWSCURRENT's credential did not "
                f"replace it (it replaced {replaced or 'nothing recorded'}): that key was not "
                "retired by this installation's rotation.",
                "Only a key a rotation of this installation replaced can come back. Rotate "
                "again if the current key fails.",
            )
        if previous.secret.ses_region != current.secret.ses_region:
            raise RollbackRefusedError(
                f"The previous credential is for SES in {previous.secret.ses_region}, the "
                f"installation sends through {current.secret.ses_region} now.",
                "A password works only in its region: rotate instead of rolling back.",
            )
        grace_days = self.rotation.config.previous_key_grace_days
        tags = self.secrets.tags()
        if previous_key in ended_windows(tags):
            raise RollbackRefusedError(
                f"The rollback window of key {previous_key} was ended by the operator "
                "(rotate --end-rollback-window); the next rotation may delete it.",
                "Rotate again if the current key fails.",
            )
        record = retired_keys(tags).get(previous_key)
        # Without a record (a step stopped before writing it) the window counts from when the
        # current version was stored, which is earlier: the window never runs long.
        replaced_at = record.deactivated_at if record else current.created_at
        ends = window_end(replaced_at or self.rotation.now(), grace_days)
        if grace_days <= 0 or self.rotation.now() >= ends:
            raise RollbackRefusedError(
                f"The rollback window of key {previous_key} ended {ends:%Y-%m-%d %H:%M} UTC "
                f"({grace_days:g} days after it was replaced); it may be deleted any time now.",
                "Rotate again if the current key fails; a longer window for the future is the "
                "cdk.json setting previousKeyGraceDays.",
            )
        return previous.secret

    def _require_unchanged(self, current: SecretVersion) -> dict[str, list[str]]:
        """Right before an effect: no rotation started, AWSCURRENT did not move."""
        stages = self.secrets.version_stages()
        _refuse_if_rotating(stages)
        if CURRENT not in stages.get(current.version_id, []):
            raise RollbackRefusedError(
                f"AWSCURRENT moved off version {current.version_id} while the rollback ran.",
                "Something rotated meanwhile: check with ses-smtp-rotator status.",
            )
        return stages

    def _undone(
        self, error: RotationError, restored: InstallationSecret, current: SecretVersion
    ) -> RotationError:
        """Before Kion has the previous key, a refusal leaves everything as it was: the key
        deactivated again, the label off. Checked against Kion first: its key stays Active."""
        try:
            kion_username = self.rotation._kion(restored).smtp_settings().username
            if kion_username != restored.access_key_id:
                self._keys(restored).deactivate(restored.access_key_id)
                self.secrets.unlabel(rollback_version_id(current.version_id), ROLLBACK)
        except RotationError as undo_failed:
            logger.warning("Could not undo the rollback's start", error=undo_failed.cause)
            return RollbackRefusedError(
                f"{error.cause} Kion keeps key {current.secret.access_key_id}.",
                f"{error.fix} Then run the rollback again: it picks up where it stopped.",
            )
        return RollbackRefusedError(
            f"{error.cause} Nothing changed: Kion and AWSCURRENT keep key "
            f"{current.secret.access_key_id}, and {restored.access_key_id} is Inactive again.",
            error.fix.replace("Secrets Manager retries the rotation.", "").strip()
            + " Then roll back again.",
        )

    def _report(self, restored: SecretVersion, *, already_done: bool = False) -> RollbackReport:
        grace = timedelta(days=self.rotation.config.previous_key_grace_days)
        retired = restored.secret.replaces
        record = retired_keys(self.secrets.tags()).get(retired)
        retired_at = record.deactivated_at if record else restored.created_at
        return RollbackReport(
            installation=self.secrets.secret_id,
            restored_access_key_id=restored.secret.access_key_id,
            retired_access_key_id=retired,
            retired_deletion_after=(retired_at or self.rotation.now()) + grace,
            version_id=restored.version_id,
            already_done=already_done,
        )

    def _keys(self, secret: InstallationSecret) -> UserAccessKeys:
        return self.rotation.user_keys(secret)


def _refuse_if_rotating(stages: dict[str, list[str]]) -> None:
    unfinished = [
        vid for vid, labels in stages.items() if PENDING in labels and CURRENT not in labels
    ]
    if unfinished:
        raise RotationInProgressError(
            f"A rotation is unfinished (version {unfinished[0]} is AWSPENDING).",
            "Let it finish (ses-smtp-rotator status shows it), or give it up with "
            "ses-smtp-rotator abandon, then roll back if still needed.",
        )
