"""Retired access keys: deactivated first, deleted only once their rollback window has passed.

A key a rotation replaced is set Inactive (reversible: SES refuses it until it is made Active
again) and recorded as a tag on the installation secret: when it was deactivated, whether this
product made it or adopted it, and IAM's last-used record read just before. The record is what
the grace window is counted from; IAM keeps no date of a status change. Tags rather than a field
in a version: versions cannot be changed once stored, and a new version would move AWSPREVIOUS.

A retired key is deleted only when every condition holds, all read again right before the
delete: it still exists and is Inactive, it is this installation's (recorded in one of its
secret's versions, or the user is dedicated to it), no version holds it as AWSCURRENT or
AWSPENDING, Kion is not configured with it, and its window has passed (or the operator ended the
window for that key with ``ses-smtp-rotator rotate --end-rollback-window``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ses_smtp_rotator.functions.errors import AwsConnectionError, AwsPermissionError
from ses_smtp_rotator.functions.services.iam_keys import KeyLastUsed, UserAccessKeys
from ses_smtp_rotator.functions.services.secrets_store import (
    CURRENT,
    PENDING,
    InstallationSecrets,
)
from ses_smtp_rotator.functions.telemetry import logger

RETIRED_TAG_PREFIX = "ses-smtp-rotator:retired:"
"""Followed by the access key id; the value is the record (``RetiredKey.tag_value``)."""
END_WINDOW_TAG = "ses-smtp-rotator:end-rollback-window"
"""Written by ``rotate --end-rollback-window``: the key ids (space-separated) whose rollback
window the operator ended, so that createSecret may delete them at IAM's two-key limit."""

_STAMP = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class RetiredKey:
    """The record of one deactivated key."""

    access_key_id: str
    deactivated_at: datetime
    adopted: bool
    """True when this product did not make the key (the key Kion held at the first rotation)."""
    last_used: KeyLastUsed | None
    """IAM's last-used record read before deactivation; None when it could not be read."""

    @property
    def tag_key(self) -> str:
        return RETIRED_TAG_PREFIX + self.access_key_id

    def window_ends(self, grace: timedelta) -> datetime:
        return self.deactivated_at + grace

    def tag_value(self) -> str:
        """``deactivated=<UTC> origin=<made|adopted> used=<UTC|never|unknown> [service= region=]``
        (tag values allow no JSON)."""
        parts = [
            f"deactivated={self.deactivated_at.astimezone(UTC):{_STAMP}}",
            f"origin={'adopted' if self.adopted else 'made'}",
        ]
        used = self.last_used
        if used is None:
            parts.append("used=unknown")
        elif used.used_at is None:
            parts.append("used=never")
        else:
            parts += [
                f"used={used.used_at.astimezone(UTC):{_STAMP}}",
                f"service={_tag_safe(used.service)}",
                f"region={_tag_safe(used.region)}",
            ]
        return " ".join(parts)

    @classmethod
    def from_tag(cls, key: str, value: str) -> RetiredKey | None:
        """The record in one tag, or None when the tag is not one or cannot be read (the key is
        then treated as not yet recorded: its window starts again, the safe direction)."""
        if not key.startswith(RETIRED_TAG_PREFIX):
            return None
        fields = dict(part.split("=", 1) for part in value.split() if "=" in part)
        try:
            deactivated_at = _parse_stamp(fields["deactivated"])
            used = fields.get("used", "unknown")
            last_used = (
                None
                if used == "unknown"
                else KeyLastUsed(
                    used_at=None if used == "never" else _parse_stamp(used),
                    service=fields.get("service", "N/A"),
                    region=fields.get("region", "N/A"),
                )
            )
        except (KeyError, ValueError):
            return None
        return cls(
            access_key_id=key[len(RETIRED_TAG_PREFIX) :],
            deactivated_at=deactivated_at,
            adopted=fields.get("origin") == "adopted",
            last_used=last_used,
        )

    def describe_last_use(self) -> str:
        if self.last_used is None:
            return "last use before deactivation unknown (IAM could not be asked)"
        return f"{self.last_used.describe()} (read before deactivation)"


def retired_keys(tags: dict[str, str]) -> dict[str, RetiredKey]:
    """The records among a secret's tags, by access key id."""
    records = (RetiredKey.from_tag(key, value) for key, value in tags.items())
    return {record.access_key_id: record for record in records if record is not None}


def ended_windows(tags: dict[str, str]) -> set[str]:
    """The key ids whose rollback window the operator ended."""
    return set(tags.get(END_WINDOW_TAG, "").split())


@dataclass
class KeyRetirement:
    """Retires and deletes the keys of one installation (its secret and its IAM user)."""

    secrets: InstallationSecrets
    keys: UserAccessKeys
    grace: timedelta
    dedicated_user: bool
    now: Callable[[], datetime] = lambda: datetime.now(UTC)

    def records(self) -> dict[str, RetiredKey]:
        return retired_keys(self.secrets.tags())

    def retire(
        self, access_key_id: str, *, adopted: bool, tags: dict[str, str] | None = None
    ) -> RetiredKey | None:
        """Deactivate a key and record it; again on a key already retired, nothing changes.
        None when the key is gone, or was made Active again after its retirement (someone put
        it back on purpose: it is left alone). An Inactive key with no record (deactivated by
        hand, or a step stopped between the two) is recorded now: its window starts now.
        ``tags``: the secret's tags as the caller read them moments ago (else read here)."""
        key = next((k for k in self.keys.list() if k.access_key_id == access_key_id), None)
        if key is None:
            return None
        record = (self.records() if tags is None else retired_keys(tags)).get(access_key_id)
        if record is not None and key.active:
            logger.info(
                "The retired key was made Active again; left alone", access_key_id=access_key_id
            )
            return None
        if record is not None:
            return record
        record = RetiredKey(access_key_id, self.now(), adopted, self._last_used(access_key_id))
        if key.active:
            self.keys.deactivate(access_key_id)
        # Recorded after the deactivation, so the window never starts before the key stopped
        # working; a step that stops in between leaves an Inactive key without record, which the
        # next run (or the watch) records then.
        self.secrets.tag(record.tag_key, record.tag_value())
        logger.info(
            "Deactivated the replaced access key",
            access_key_id=access_key_id,
            origin="adopted: not made by this product, never deleted outright"
            if adopted
            else "made by this product",
            last_used=record.describe_last_use(),
            deletion_after=f"{record.window_ends(self.grace):%Y-%m-%d %H:%M} UTC",
        )
        return record

    def deletion_refusal(
        self,
        access_key_id: str,
        kion_username: Callable[[], str],
        *,
        window_ended: bool = False,
        adopted_too: bool = True,
    ) -> str | None:
        """Why ``access_key_id`` may not be deleted now, or None when every condition holds.
        Everything is read afresh; Kion last, since it is the slowest to answer."""
        key = next((k for k in self.keys.list() if k.access_key_id == access_key_id), None)
        if key is None:
            return f"{access_key_id} no longer exists"
        if key.active:
            return f"{access_key_id} is Active again (reactivated), so it is not retired"
        if not self.dedicated_user and not self.secrets.records(access_key_id):
            return (
                f"{access_key_id} is recorded in no version of this secret and the IAM user is "
                "not dedicated to this installation, so it may serve another consumer"
            )
        record = self.records().get(access_key_id)
        if record is None:
            return f"{access_key_id} has no retirement record yet, so its window has not begun"
        if record.adopted and not adopted_too and not window_ended:
            return (
                f"{access_key_id} was adopted (not made by this product): only the daily watch "
                "deletes it, once its window has passed"
            )
        ends = record.window_ends(self.grace)
        if not window_ended and self.now() < ends:
            return f"{access_key_id} is in its rollback window until {ends:%Y-%m-%d %H:%M} UTC"
        labelled = self.secrets.labelled_key_ids(CURRENT, PENDING)
        if access_key_id in labelled:
            return f"{access_key_id} is held by a version labelled {labelled[access_key_id]}"
        if kion_username() == access_key_id:
            return f"Kion is configured with {access_key_id}"
        return None

    def delete_if_due(
        self,
        access_key_id: str,
        kion_username: Callable[[], str],
        *,
        window_ended: bool = False,
        adopted_too: bool = True,
    ) -> str | None:
        """Delete a retired key when every condition holds; returns the refusal otherwise."""
        refusal = self.deletion_refusal(
            access_key_id, kion_username, window_ended=window_ended, adopted_too=adopted_too
        )
        if refusal is not None:
            return refusal
        self.keys.delete(access_key_id)
        logger.info(
            "Deleted the retired access key"
            + (" (the operator ended its rollback window)" if window_ended else ""),
            access_key_id=access_key_id,
        )
        self.forget(access_key_id)
        return None

    def forget(self, *access_key_ids: str) -> None:
        """Drop the records (and any ended window) of keys that are gone."""
        tags = self.secrets.tags()
        stale = [RETIRED_TAG_PREFIX + key_id for key_id in access_key_ids]
        self.secrets.untag(*(tag for tag in stale if tag in tags))
        ended = ended_windows(tags)
        if ended & set(access_key_ids):
            left = ended - set(access_key_ids)
            if left:
                self.secrets.tag(END_WINDOW_TAG, " ".join(sorted(left)))
            else:
                self.secrets.untag(END_WINDOW_TAG)

    def _last_used(self, access_key_id: str) -> KeyLastUsed | None:
        """Information only: a failure to read it never stops a retirement."""
        try:
            return self.keys.last_used(access_key_id)
        except (AwsPermissionError, AwsConnectionError) as error:
            logger.warning(
                "IAM's last-used record of the key could not be read; retiring it all the same",
                access_key_id=access_key_id,
                error=error.cause,
            )
            return None


def _parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, _STAMP).replace(tzinfo=UTC)


def _tag_safe(text: str) -> str:
    """Tag values allow letters, digits, spaces and ``_.:/=+-@``; a space would split a field."""
    return "".join(ch if ch.isalnum() or ch in "_.:/+-@" else "-" for ch in text) or "N/A"
