"""The four rotation steps. Each is idempotent: Secrets Manager may run any of them again."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.errors import (
    KeyLimitError,
    KionStateError,
    RollbackWindowError,
    RotationStateError,
)
from ses_smtp_rotator.functions.installation_metrics import (
    installation_name,
    put_installation_metrics,
)
from ses_smtp_rotator.functions.installation_secret import InstallationSecret
from ses_smtp_rotator.functions.retired_keys import (
    KeyRetirement,
    RetiredKey,
    ended_windows,
    retired_keys,
)
from ses_smtp_rotator.functions.services.account_access import user_access_keys
from ses_smtp_rotator.functions.services.iam_keys import KeyLimitReachedError, UserAccessKeys
from ses_smtp_rotator.functions.services.kion_settings import KionClient, KionSmtpSettings
from ses_smtp_rotator.functions.services.secrets_store import (
    CURRENT,
    PENDING,
    InstallationSecrets,
    KionApiKeys,
    SecretVersion,
    tags_of,
)
from ses_smtp_rotator.functions.services.ses_hosts import kion_endpoint_verdict
from ses_smtp_rotator.functions.services.ses_smtp import SesAcceptanceWait, SmtpEndpoint
from ses_smtp_rotator.functions.services.smtp_password import derive_smtp_password
from ses_smtp_rotator.functions.smtp_rotation.notices import SUCCEEDED, Outcome, announce
from ses_smtp_rotator.functions.smtp_rotation.send_proof import SendPathProof
from ses_smtp_rotator.functions.smtp_rotation.spare_keys import SpareKeyPolicy, min_spare_age
from ses_smtp_rotator.functions.telemetry import logger, metrics
from ses_smtp_rotator.functions.time_budget import Effect, TimeBudget, WorstCase

# The settings a step reads from the pending version (everything but the credential).
SETTINGS = (
    "ses_region",
    "iam_user_name",
    "kion_url",
    "kion_api_key_secret_id",
    "smtp_host",
    "smtp_port",
    "implicit_tls",
    "kion_ca_bundle",
    "smtp_ca_bundle",
    "send_path_check",
    "iam_user_dedicated",
    "ses_account",
)


@dataclass
class Rotation:
    """One rotation request (a secret and a ClientRequestToken) and the systems it works with."""

    secrets: InstallationSecrets
    token: str
    config: RotationConfig
    api_keys: KionApiKeys
    rotation_token: str | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    time_left_ms: Callable[[], int] | None = None
    """The invocation's time left (the Lambda context's get_remaining_time_in_millis)."""
    budget: TimeBudget = field(init=False)

    def __post_init__(self) -> None:
        self.budget = TimeBudget(self.time_left_ms, WorstCase(self.config))

    def create_secret(self) -> None:
        """Create a new access key and store its SMTP password as the AWSPENDING version."""
        if self.secrets.version(self.token):
            logger.info("The pending version already exists; nothing to create")
            return
        current = self.secrets.current().secret
        # On adoption the key this rotation replaces is the one Kion sends with now: recorded, so
        # that finishSecret deletes that key and no other.
        replaces = current.access_key_id or self._kion_endpoint(current).username
        username, password = self._new_credential(current)
        pending = current.with_credential(username, password, replaces=replaces)
        self.secrets.put_pending(self.token, pending, self.rotation_token)
        logger.info("Stored the new credential as AWSPENDING", access_key_id=username)

    def set_secret(self, pending: InstallationSecret) -> None:
        """Prove the new credential where Kion sends (logins, then one message), then give it
        to Kion."""
        self._require_current_settings(pending)
        kion_smtp = self._kion_endpoint(pending)
        self.prove_where_kion_sends(pending, kion_smtp)
        kion = self._kion(pending)
        self._require_stage(PENDING, before="giving Kion the new key")
        self.budget.before(Effect.KION_PATCH)
        kion.set_smtp_credential(pending.username, pending.password)
        logger.info("Kion now sends with the new key", access_key_id=pending.username)

    def prove_where_kion_sends(
        self, secret: InstallationSecret, kion_smtp: KionSmtpSettings, which: str = "new"
    ) -> None:
        """The rule a credential meets before Kion gets it: SES accepts its logins in a row at
        Kion's host, then (unless send_path_check is off) takes one message from Kion's sender.
        ``which`` key it is, in the log ("new"; a rollback's "previous")."""
        endpoint = SmtpEndpoint.of(secret, self.config.smtp_timeout)
        wait = self._acceptance_wait(endpoint, self.config.ses_accept_logins)
        waited = wait.until_accepted(secret.username, secret.password)
        put_installation_metrics(
            installation_name(self.secrets.secret_id),
            {"SesAcceptWaitSeconds": (MetricUnit.Seconds, waited)},
        )
        logger.info(
            f"SES accepts the {which} key", access_key_id=secret.username, logins=wait.logins
        )
        if secret.send_path_check:
            proof = SendPathProof(endpoint, secret.ses_region, sleep=self.sleep)
            proof.send(secret.username, secret.password, kion_smtp.from_address or "")
            logger.info("SES took a message from Kion's sender", access_key_id=secret.username)

    def test_secret(self, pending: InstallationSecret) -> None:
        """Check that Kion holds the new credential and that SES accepts it. Changes nothing."""
        if not pending.username:
            # Attaching rotation without rotating makes Secrets Manager test the configuration
            # on a copy of AWSCURRENT; before the first rotation that copy has no credential.
            logger.info("Configuration check on a secret with no credential yet; settings valid")
            return
        self._require_current_settings(pending)
        self._require_kion_uses(pending, self._kion_endpoint(pending), check_password=True)
        endpoint = SmtpEndpoint.of(pending, self.config.smtp_timeout)
        self._acceptance_wait(endpoint, 1).until_accepted(pending.username, pending.password)

    def finish_secret(self, pending: InstallationSecret) -> None:
        """Make the new version AWSCURRENT, then deactivate the replaced key if nothing uses it."""
        kion_smtp = self._kion(pending).smtp_settings()
        kion_username = self._require_kion_uses(pending, kion_smtp, check_password=False)
        current = self.secrets.current()
        self._require_current_settings(pending, current.secret)
        self.budget.before(Effect.LABEL_MOVE)
        described = self.secrets.make_current(self.token, current.version_id)
        logger.info("AWSCURRENT moved to the new version", access_key_id=pending.username)
        retired = self._retire_replaced_key(current, pending, kion_username, described)
        metrics.add_metric("RotationSucceeded", MetricUnit.Count, 1)
        self._announce_success(pending, retired)

    def retire_left_behind_key(self, finished: InstallationSecret) -> None:
        """finishSecret again on a version already AWSCURRENT: an earlier attempt moved the label,
        then stopped before retiring the key it replaced (AWSPREVIOUS's, or on adoption the key
        Kion held). Retire it now, if it is still there and nothing uses it."""
        replaced = self.secrets.previous()
        if replaced is None:
            return
        made_here = replaced.secret.access_key_id
        retired = made_here or finished.replaces
        if not retired or retired == finished.access_key_id:
            return
        keys = self.user_keys(finished).list()
        key = next((key for key in keys if key.access_key_id == retired), None)
        if key is None:
            return
        delete_now = made_here and self.config.previous_key_grace_days == 0
        if key.active or delete_now or retired not in retired_keys(self.secrets.tags()):
            kion_smtp = self._kion(finished).smtp_settings()
            kion_username = self._require_kion_uses(finished, kion_smtp, check_password=False)
            retired_now = self._retire_replaced_key(replaced, finished, kion_username)
            self._announce_success(finished, retired_now)  # the first attempt stopped short of it

    def _new_credential(self, current: InstallationSecret) -> tuple[str, str]:
        keys = self.user_keys(current)
        self.budget.before(Effect.KEY_CREATE)
        try:
            return _smtp_credential_of_new_key(keys, current.ses_region)
        except KeyLimitReachedError:
            return self._credential_at_key_limit(current, keys)

    def _credential_at_key_limit(
        self, current: InstallationSecret, keys: UserAccessKeys
    ) -> tuple[str, str]:
        """The user has two keys: free a spare one that is provably this installation's and old
        enough (a retired key only once its rollback window has passed, or the operator ended
        it), or finish what an abandoned rotation started by keeping the key Kion runs on."""
        kion_username = self._kion(current).smtp_settings().username
        in_use = {current.access_key_id, kion_username} - {""}
        retirement = self._retirement(current)
        self._retire_left_behind_at_limit(current, retirement, in_use)
        tags = self.secrets.tags()
        records, ended = retired_keys(tags), ended_windows(tags)
        all_keys = sorted(keys.list(), key=lambda key: key.created_at)
        spare = [key for key in all_keys if key.access_key_id not in in_use]
        policy = SpareKeyPolicy(
            dedicated_user=current.iam_user_dedicated,
            recorded=self.secrets.records,
            now=self.now(),
            min_age_seconds=min_spare_age(self.config.function_timeout),
        )
        refusals: dict[str, str] = {}
        for key in spare:
            unrecorded = key.access_key_id not in records
            # The key Kion held at adoption is never deleted outright, whatever left it Active.
            adopted = unrecorded and self.secrets.adopted(key.access_key_id)
            if key.active and unrecorded and not adopted:
                refusal = policy.refusal(key)
                if refusal is None:
                    self._require_stage(
                        PENDING, before=f"deleting unused access key {key.access_key_id}"
                    )
                    self.budget.before(Effect.KEY_DELETE)
                    keys.delete(key.access_key_id)
                    logger.info("Deleted unused access key", access_key_id=key.access_key_id)
            else:
                if policy.refusal(key) is None and unrecorded:
                    self.budget.before(Effect.KEY_DEACTIVATE)
                    retirement.retire(key.access_key_id, adopted=adopted)  # its window starts now
                self._require_stage(PENDING, before=f"deleting retired key {key.access_key_id}")
                self.budget.before(Effect.KEY_DELETE)
                refusal = retirement.delete_if_due(
                    key.access_key_id,
                    partial(self._kion_username, current),
                    window_ended=key.access_key_id in ended,
                    adopted_too=False,
                )
            if refusal is None:
                self.budget.before(Effect.KEY_CREATE)
                try:
                    return _smtp_credential_of_new_key(keys, current.ses_region)
                except KeyLimitReachedError:
                    raise self._key_limit_error(current, all_keys, kion_username) from None
            refusals[key.access_key_id] = refusal
        if kion_username and kion_username != current.access_key_id:
            earlier = self.secrets.find_credential(kion_username)
            # The stored password only works in the region it was derived for.
            if earlier is not None and earlier.secret.ses_region == current.ses_region:
                logger.info(
                    "Kion runs on a key from an unfinished rotation; finishing with it",
                    access_key_id=kion_username,
                )
                return kion_username, earlier.secret.password
        fresh = retirement.records()
        inactive = {key.access_key_id for key in keys.list() if not key.active}
        in_window = [
            fresh[key_id]
            for key_id in refusals
            if key_id in fresh
            and key_id in inactive
            and key_id not in ended
            and self.now() < fresh[key_id].window_ends(retirement.grace)
        ]
        if in_window:
            raise self._rollback_window_error(current, in_window[0])
        raise self._key_limit_error(current, all_keys, kion_username, list(refusals.values()))

    def _retire_left_behind_at_limit(
        self, current: InstallationSecret, retirement: KeyRetirement, in_use: set[str]
    ) -> None:
        """finishSecret deactivates the key a rotation replaced; when it stopped before that, the
        key is still Active: retire it now rather than delete it outright."""
        previous = self.secrets.previous()
        replaced = (previous.secret.access_key_id if previous else "") or current.replaces
        if replaced and replaced not in in_use:
            self.budget.before(Effect.KEY_DEACTIVATE)
            retirement.retire(replaced, adopted=not (previous and previous.secret.access_key_id))

    def _rollback_window_error(
        self, current: InstallationSecret, record: RetiredKey
    ) -> RollbackWindowError:
        grace = timedelta(days=self.config.previous_key_grace_days)
        ends = f"{record.window_ends(grace):%Y-%m-%d %H:%M} UTC"
        name = installation_name(self.secrets.secret_id)
        who = "adopted key (not made by this product)" if record.adopted else "replaced key"
        return RollbackWindowError(
            f"IAM user {current.iam_user_name} already has two access keys: AWSCURRENT's "
            f"{current.access_key_id} and {record.access_key_id}, the {who} the last rotation "
            f"deactivated, which stays in its rollback window until {ends}.",
            f"Either wait: after {ends} the daily watch deletes {record.access_key_id} and the "
            "next rotation has room. Or end the window now, giving up the way back to "
            f"{record.access_key_id}: ses-smtp-rotator rotate {name} --end-rollback-window.",
        )

    def _key_limit_error(
        self,
        current: InstallationSecret,
        all_keys: list,
        kion_username: str,
        refusals: list[str] | None = None,
    ) -> KeyLimitError:
        held = ", ".join(key.access_key_id for key in all_keys)
        if refusals:
            return KeyLimitError(
                f"IAM user {current.iam_user_name} already has two access keys ({held}); "
                f"AWSCURRENT holds {current.access_key_id or 'none'}, Kion is configured with "
                f"{kion_username or 'none'}, and the other may not be deleted: "
                f"{'; '.join(refusals)}.",
                "Rotate again after the wait it names; a key that serves another consumer needs "
                "its own IAM user (give this installation a user of its own), and one you know "
                "to be unused you may delete in IAM.",
            )
        return KeyLimitError(
            f"IAM user {current.iam_user_name} already has two access keys ({held}) and both are "
            f"in use: AWSCURRENT holds {current.access_key_id or 'none'}, Kion is configured "
            f"with {kion_username or 'none'}.",
            "Point Kion at the AWSCURRENT credential (or put Kion's credential into the secret "
            "as AWSCURRENT), then delete the key neither uses in IAM and rotate again.",
        )

    def _require_current_settings(
        self, pending: InstallationSecret, current: InstallationSecret | None = None
    ) -> None:
        """The pending version keeps the settings it was stored with, and Secrets Manager retries
        a failed rotation with that version: an operator's fix to AWSCURRENT's settings would be
        ignored by every retry (and undone by finishSecret). Refuse, and say what to do."""
        current = current or self.secrets.current().secret
        changed = [name for name in SETTINGS if getattr(pending, name) != getattr(current, name)]
        if changed:
            raise RotationStateError(
                f"The secret's settings were changed after this rotation stored its pending "
                f"version {self.token} ({', '.join(changed)}); that version still holds the old "
                "ones.",
                "Abandon this rotation and start a new one, which uses the changed settings: "
                f"aws secretsmanager update-secret-version-stage --secret-id "
                f"{self.secrets.secret_id} --version-stage AWSPENDING --remove-from-version-id "
                f"{self.token}, then rotate again.",
            )

    def _kion_endpoint(self, secret: InstallationSecret) -> KionSmtpSettings:
        """Kion's SMTP settings, once they show Kion sends where this credential works."""
        kion_smtp = self._kion(secret).smtp_settings()
        kion_endpoint_verdict(kion_smtp, secret).require()
        return kion_smtp

    def _require_stage(
        self, stage: str, *, before: str, described: dict[str, Any] | None = None
    ) -> None:
        """A step may run for minutes: right before an effect, check that this version still
        carries ``stage`` (an operator may have abandoned the rotation meanwhile); in
        ``described``, when the step read the secret's description a call before."""
        labels = (
            self.secrets.version_stages()
            if described is None
            else described.get("VersionIdsToStages", {})
        )
        stages = labels.get(self.token) or []
        if stage not in stages:
            raise RotationStateError(
                f"Version {self.token} is no longer {stage} (it is "
                f"{', '.join(stages) or 'unlabelled'}); stopped before {before}.",
                "The rotation was abandoned or replaced while this step ran; nothing was "
                "changed. Start a new rotation if the secret still needs one.",
            )

    def _require_kion_uses(
        self, pending: InstallationSecret, kion_smtp: KionSmtpSettings, *, check_password: bool
    ) -> str:
        if kion_smtp.username != pending.username:
            raise KionStateError(
                f"Kion's SMTP username is {kion_smtp.username or 'empty'}, not the new access key "
                f"{pending.username}.",
                "setSecret did not reach Kion, or someone changed Kion's SMTP settings during the "
                "rotation; Secrets Manager retries the rotation, or start a new one.",
            )
        if check_password and kion_smtp.password not in (None, pending.password):
            raise KionStateError(
                f"Kion's SMTP password does not belong to access key {pending.username}.",
                "Someone changed Kion's SMTP password during the rotation; rotate again.",
            )
        return kion_smtp.username

    def _retire_replaced_key(
        self,
        replaced: SecretVersion,
        pending: InstallationSecret,
        kion_username: str,
        described: dict[str, Any] | None = None,
    ) -> RetiredKey | None:
        """Deactivate the replaced key (reversible: the rollback window); delete it at once only
        when the grace window is 0 and this installation made it. An adopted key (the one Kion
        held on the first rotation) may serve other consumers: it always waits for the watch.
        ``described``: the secret's description read right after the label move (its labels and
        tags are then not read again)."""
        # The replaced key is AWSCURRENT's, or on adoption the key Kion held when it began;
        # never any other key of the user, which may serve another consumer.
        made_here = replaced.secret.access_key_id
        retired = made_here or pending.replaces
        if not retired or retired in {pending.access_key_id, kion_username}:
            return None
        self._require_stage(
            CURRENT, before=f"deactivating the replaced key {retired}", described=described
        )
        retirement = self._retirement(pending)
        self.budget.before(Effect.KEY_DEACTIVATE)
        tags = None if described is None else tags_of(described)
        record = retirement.retire(retired, adopted=not made_here, tags=tags)
        if record is None:
            return None
        if made_here and self.config.previous_key_grace_days == 0:
            self.budget.before(Effect.KEY_DELETE)
            refusal = retirement.delete_if_due(retired, partial(self._kion_username, pending))
            if refusal:
                logger.info("The replaced key is kept", access_key_id=retired, reason=refusal)
        return record

    def _announce_success(self, finished: InstallationSecret, retired: RetiredKey | None) -> None:
        """The notice and the event of a rotation that finished (best effort, never raises)."""
        grace = timedelta(days=self.config.previous_key_grace_days)
        announce(
            Outcome(
                self.secrets.secret_id,
                SUCCEEDED,
                current_access_key_id=finished.access_key_id,
                deactivated_access_key_id=retired.access_key_id if retired else "",
                deletion_after=retired.window_ends(grace) if retired else None,
                deactivated_adopted_last_use=(
                    retired.describe_last_use() if retired and retired.adopted else ""
                ),
            )
        )

    def _retirement(self, secret: InstallationSecret) -> KeyRetirement:
        return KeyRetirement(
            self.secrets,
            self.user_keys(secret),
            grace=timedelta(days=self.config.previous_key_grace_days),
            dedicated_user=secret.iam_user_dedicated,
            now=self.now,
        )

    def user_keys(self, secret: InstallationSecret) -> UserAccessKeys:
        """The installation's IAM user's keys, in the account that holds the user."""
        return user_access_keys(secret, self.secrets.secret_id)

    def _kion_username(self, secret: InstallationSecret) -> str:
        return self._kion(secret).smtp_settings().username

    def _acceptance_wait(self, endpoint: SmtpEndpoint, logins: int) -> SesAcceptanceWait:
        # The logins' span takes at most half the bound, so that a bound set below the span
        # still leaves time for the key to propagate first. (A single login has no span.)
        span = min(self.config.ses_accept_min_span, self.config.ses_accept_timeout / 2)
        return SesAcceptanceWait(
            endpoint,
            timeout=self.config.ses_accept_timeout,
            required_logins=logins,
            min_span=span,
            clock=self.clock,
            sleep=self.sleep,
        )

    def _kion(self, secret: InstallationSecret) -> KionClient:
        return KionClient(
            secret.kion_url,
            self.api_keys.api_key(secret.kion_api_key_secret_id),
            ca_pem=secret.kion_ca_bundle,
            timeout=self.config.kion_timeout,
            retries=self.config.kion_retries,
            backoff_factor=self.config.kion_retry_backoff,
            api_key_secret_id=secret.kion_api_key_secret_id,
            reload_api_key=partial(
                self.api_keys.api_key, secret.kion_api_key_secret_id, fresh=True
            ),
        )


def _smtp_credential_of_new_key(keys: UserAccessKeys, ses_region: str) -> tuple[str, str]:
    """Create an access key and return its id with the SMTP password for ``ses_region``; the
    secret access key itself goes no further."""
    new_key = keys.create()
    logger.info("Created access key", access_key_id=new_key.access_key_id)
    return new_key.access_key_id, derive_smtp_password(new_key.secret_access_key, ses_region)
