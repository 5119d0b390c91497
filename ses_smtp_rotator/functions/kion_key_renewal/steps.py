"""The renewal of the Kion API key, as the four rotation steps. Each is idempotent.

- createSecret: delete the keys this installation's renewals made that neither AWSCURRENT nor
  AWSPENDING holds (among them the key of an earlier try of this very step whose reply was lost:
  it carries this version's name), and AWSPREVIOUS's key when a finishSecret stopped before
  deleting it; then create a key named for this deployment, the secret and the version
  (``key_names``) and store it with its id as AWSPENDING.
- setSecret: nothing; Kion made the key live when it created it.
- testSecret: read Kion's settings with the new key.
- finishSecret: check the new key once more, move AWSCURRENT to it, then delete the replaced key
  by its id. A replaced key whose id is unknown (pasted by hand) is left to expire.

Never ``POST /app-api-key/rotate``: it ends the old key at once, so a lost reply would leave no
working key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aws_lambda_powertools.metrics import MetricUnit

from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.errors import (
    KionAuthError,
    KionRequestError,
    RotationError,
    RotationStateError,
)
from ses_smtp_rotator.functions.installation_secret import InstallationSecret
from ses_smtp_rotator.functions.kion_key_renewal.key_life import expired_key_error
from ses_smtp_rotator.functions.kion_key_renewal.key_names import key_name, made_by_renewal_of
from ses_smtp_rotator.functions.kion_key_renewal.key_secret import (
    PREVIOUS,
    SET_KION_KEY,
    ApiKeySecret,
    SecretIdentity,
    StoredApiKey,
)
from ses_smtp_rotator.functions.services.kion_keys import AppApiKeyInfo, KionKeyClient
from ses_smtp_rotator.functions.services.secrets_store import InstallationSecrets
from ses_smtp_rotator.functions.telemetry import logger, metrics
from ses_smtp_rotator.functions.time_budget import RENEWAL_FIX, Effect, TimeBudget, WorstCase


class KionKeyLimitError(RotationError):
    """Kion refused a new key and the key's user holds no key this renewal may delete."""


@dataclass
class KionKeyRenewal:
    """One renewal request (the API key secret and a ClientRequestToken)."""

    secret: ApiKeySecret
    token: str
    config: RotationConfig
    rotation_token: str | None = None
    time_left_ms: Callable[[], int] | None = None
    """The invocation's time left (the Lambda context's get_remaining_time_in_millis)."""
    budget: TimeBudget = field(init=False)
    _identity: SecretIdentity | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.budget = TimeBudget(self.time_left_ms, WorstCase(self.config), RENEWAL_FIX)

    def version_stages(self, token: str) -> list[str] | None:
        """The labels of version ``token``, for the protocol's guards. The same read gives the
        secret's ARN and name, which createSecret then uses without asking again."""
        self._identity = self.secret.describe()
        return self._identity.stages.get(token)

    @property
    def identity(self) -> SecretIdentity:
        """The secret's ARN and name, read once per invocation (they never change)."""
        if self._identity is None:
            self._identity = self.secret.describe()
        return self._identity

    def create_secret(self) -> None:
        if self.secret.version(self.token):
            logger.info("The pending version already exists; nothing to create")
            return
        identity = self.identity
        current = self.secret.current().stored
        kion = self._kion(current, identity)
        try:
            listed = kion.list_keys()
        except KionAuthError:
            raise expired_key_error(kion.kion_url, self.secret.secret_id) from None
        self._delete_spare_keys(kion, identity, listed)
        name = key_name(identity.arn, identity.name, self.token)
        self.budget.before(Effect.KION_KEY_CREATE)
        try:
            new_key = kion.create_key(name)
        except KionRequestError as error:
            raise self._limit_error(kion, current, error) from None
        logger.info("Created a Kion API key", api_key_id=new_key.id, key_name=name)
        self.secret.put_pending(
            self.token, current.with_key(new_key.key, new_key.id), self.rotation_token
        )
        logger.info("Stored the new Kion API key as AWSPENDING", api_key_id=new_key.id)

    def set_secret(self, pending: StoredApiKey) -> None:
        logger.info("Nothing to set: Kion made the new key live when it created it")

    def test_secret(self, pending: StoredApiKey) -> None:
        if not pending.api_key:
            # Attaching rotation makes Secrets Manager test a copy of AWSCURRENT; before the
            # first key is stored that copy holds none.
            logger.info("Configuration check on a secret with no key yet")
            return
        self._kion(pending, self.identity).app_config()
        logger.info("Kion accepts the new key", api_key_id=pending.api_key_id)

    def finish_secret(self, pending: StoredApiKey) -> None:
        identity = self.identity
        kion = self._kion(pending, identity)
        if not self._kion_has(kion, pending):
            raise RotationStateError(
                f"Kion no longer has the new key {pending.api_key_id} of this renewal, or "
                "refuses it.",
                "Someone deleted it in Kion; abandon this renewal (remove AWSPENDING from "
                f"version {self.token}) and start a new one.",
            )
        current = self.secret.current()
        self.budget.before(Effect.LABEL_MOVE)
        self.secret.make_current(self.token, current.version_id)
        logger.info("AWSCURRENT moved to the new Kion API key", api_key_id=pending.api_key_id)
        metrics.add_metric("KionApiKeyRenewed", MetricUnit.Count, 1)
        replaced = current.stored.api_key_id
        if replaced is None:
            logger.warning(
                "The replaced Kion API key has no recorded id, so it is left as it is: Kion "
                "ends it when app_api_key_lifespan runs out; delete it in Kion to end it sooner",
            )
            return
        if replaced in self.secret.held_key_ids():
            return
        self.budget.before(Effect.KION_KEY_DELETE)
        if kion.delete_key(replaced):
            logger.info("Deleted the replaced Kion API key", api_key_id=replaced)

    @staticmethod
    def _kion_has(kion: KionKeyClient, pending: StoredApiKey) -> bool:
        """Whether Kion still has the new key, asked with that key: a 401 says it is gone."""
        if pending.api_key_id is None:
            return True
        try:
            return kion.find_key(pending.api_key_id) is not None
        except KionAuthError:
            return False

    def _delete_spare_keys(
        self, kion: KionKeyClient, identity: SecretIdentity, listed: list[AppApiKeyInfo]
    ) -> None:
        """Delete the keys this installation's renewals made, and the key a finished renewal
        replaced, that neither AWSCURRENT nor AWSPENDING holds."""
        spare = {key.id for key in listed if made_by_renewal_of(identity, key.name, self.token)}
        previous = self.secret.labelled(PREVIOUS)
        replaced = previous.stored.api_key_id if previous else None
        if replaced in {key.id for key in listed}:
            spare.add(replaced)
        if not spare:
            return
        for key_id in sorted(spare - self.secret.held_key_ids()):
            self.budget.before(Effect.KION_KEY_DELETE)
            if kion.delete_key(key_id):
                logger.info("Deleted a spare Kion API key", api_key_id=key_id)

    def _limit_error(
        self, kion: KionKeyClient, current: StoredApiKey, refusal: KionRequestError
    ) -> RotationError:
        """Kion refused the new key: name the limit when that is why, else pass on its answer."""
        limit = kion.app_config().get("app_api_key_limit")
        listed = kion.list_keys()
        owner = next((k.user_id for k in listed if k.id == current.api_key_id), None)
        mine = [k for k in listed if owner is None or k.user_id == owner]
        if not isinstance(limit, int) or len(mine) < limit:
            return refusal
        held = ", ".join(f"{k.id} ({k.name})" for k in mine)
        return KionKeyLimitError(
            f"Kion refused a new App API key: the key's user holds {len(mine)} keys, Kion's "
            f"app_api_key_limit is {limit}, and none of them is a spare key of this "
            f"installation's renewals (keys: {held}).",
            "Delete a key of that user that nothing uses in Kion, or raise app_api_key_limit, "
            "then start the renewal again.",
        )

    def _kion(self, stored: StoredApiKey, identity: SecretIdentity) -> KionKeyClient:
        installation = self._installation(stored, identity)
        return KionKeyClient(
            installation.kion_url,
            stored.api_key,
            ca_pem=installation.kion_ca_bundle,
            timeout=self.config.kion_timeout,
            retries=self.config.kion_retries,
            backoff_factor=self.config.kion_retry_backoff,
            api_key_secret_id=self.secret.secret_id,
        )

    def _installation(self, stored: StoredApiKey, identity: SecretIdentity) -> InstallationSecret:
        """The installation secret the key belongs to, which must name this secret back."""
        if not stored.installation_secret_id:
            raise RotationStateError(
                f"The Kion API key secret {identity.name} does not say which installation its "
                "key belongs to (no installation_secret_id), so the renewal cannot tell which "
                "Kion to ask.",
                f"Store the key with: {SET_KION_KEY}, which records it.",
            )
        installation = InstallationSecrets(stored.installation_secret_id).current().secret
        if installation.kion_api_key_secret_id not in (identity.arn, identity.name):
            raise RotationStateError(
                f"The installation secret {stored.installation_secret_id} uses the Kion API key "
                f"secret {installation.kion_api_key_secret_id}, not {identity.name}.",
                f"Store the key with {SET_KION_KEY} for the installation this key belongs to.",
            )
        return installation
