"""Time budgets: how long a step's outside calls can take at worst, and the check before an effect.

Lambda ends an invocation at its timeout, whatever it is doing. A step that starts an effect it
cannot finish (Kion's PATCH, creating or deleting a key, moving AWSCURRENT) leaves it to chance
whether the effect happened. So right before each effect a step asks :class:`TimeBudget`
whether the time left covers the effect's worst case; if not, it stops with a
:class:`~ses_smtp_rotator.functions.errors.TimeBudgetError` before starting it, and Secrets
Manager runs the step again. Synth holds the function's timeout to the slowest step's worst case
(:meth:`WorstCase.slowest_step`), with the same arithmetic, so that a step that runs into the
check points at a deployment whose outside systems are slower than their timeouts allow.

The worst cases follow the configured timeouts and retries:

- a Kion request: every attempt waits its connect and read timeouts in full, and before each
  retry the longer of urllib3's backoff and Kion's Retry-After (capped); POST and DELETE are
  sent once;
- an SMTP conversation: :data:`SMTP_REPLIES_PER_CONVERSATION` replies, each up to the SMTP
  timeout; the SES wait may start its last login just before its bound;
- an AWS call: one attempt's connect and read timeouts. botocore retries throttling and AWS's own
  failures besides; their worst case (an outage of the API) fails the step however long it had.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from ses_smtp_rotator.functions.config import RotationConfig
from ses_smtp_rotator.functions.errors import TimeBudgetError
from ses_smtp_rotator.functions.services.aws_clients import AWS_CONNECT_TIMEOUT, AWS_READ_TIMEOUT
from ses_smtp_rotator.functions.services.kion_settings import CONNECT_TIMEOUT, RETRY_AFTER_CAP
from ses_smtp_rotator.functions.smtp_rotation import send_proof

SMTP_REPLIES_PER_CONVERSATION = 5
"""Connect, greeting, TLS, EHLO and AUTH (or MAIL, RCPT and DATA): each may take a timeout."""
ROTATION_FIX = (
    "Raise functionTimeoutSeconds (the rotation function's timeout, at most 900 s) or lower "
    "sesAcceptTimeoutSeconds; Secrets Manager runs the step again meanwhile."
)
RENEWAL_FIX = (
    "Kion answers too slowly for the renewal function's timeout: check Kion's health and the "
    "function's network path to it; Secrets Manager runs the step again meanwhile."
)


class Effect(Enum):
    """An effect a step may only start with the time to finish it."""

    KION_PATCH = "giving Kion the new SMTP credential (PATCH)"
    KEY_CREATE = "creating an access key and storing its credential as AWSPENDING"
    KEY_DELETE = "deleting an access key"
    KEY_DEACTIVATE = "deactivating an access key and recording its retirement"
    LABEL_MOVE = "moving AWSCURRENT to the new version"
    KION_KEY_CREATE = "creating a Kion App API key and storing it as AWSPENDING"
    KION_KEY_DELETE = "deleting a Kion App API key"


@dataclass(frozen=True)
class WorstCase:
    """The longest each outside call, effect and step can take with ``config``."""

    config: RotationConfig

    def kion_request(self, *, retried: bool = True) -> float:
        config = self.config
        attempt = min(CONNECT_TIMEOUT, config.kion_timeout) + config.kion_timeout
        if not retried:
            return attempt
        # urllib3: no pause before the first retry, then backoff * 2, * 4, ...
        backoffs = [config.kion_retry_backoff * 2**retry for retry in range(config.kion_retries)]
        pauses = sum(
            max(backoff if retry else 0.0, RETRY_AFTER_CAP)
            for retry, backoff in enumerate(backoffs)
        )
        return (config.kion_retries + 1) * attempt + pauses

    def aws_call(self, calls: int = 1) -> float:
        return calls * (AWS_CONNECT_TIMEOUT + AWS_READ_TIMEOUT)

    def smtp_conversation(self) -> float:
        return SMTP_REPLIES_PER_CONVERSATION * self.config.smtp_timeout

    def ses_wait(self) -> float:
        return self.config.ses_accept_timeout + self.smtp_conversation()

    def send_path_check(self) -> float:
        pauses = sum(send_proof.PAUSE * attempt for attempt in range(1, send_proof.ATTEMPTS))
        return send_proof.ATTEMPTS * self.smtp_conversation() + pauses

    def effect(self, effect: Effect) -> float:
        seconds = {
            Effect.KION_PATCH: self.kion_request(),
            Effect.KEY_CREATE: self.aws_call(2),
            Effect.KEY_DELETE: self.aws_call(),
            # GetAccessKeyLastUsed, UpdateAccessKey and the record's TagResource.
            Effect.KEY_DEACTIVATE: self.aws_call(3),
            Effect.LABEL_MOVE: self.aws_call(),
            Effect.KION_KEY_CREATE: self.kion_request(retried=False) + self.aws_call(),
            Effect.KION_KEY_DELETE: self.kion_request(retried=False),
        }
        return seconds[effect]

    def steps(self) -> dict[str, float]:
        """Each step of the SMTP rotation at its slowest: every call on its longest path."""
        kion_get = self.kion_request()
        return {
            # The guards, the version, AWSCURRENT, the Kion key, Kion's settings, the new key
            # stored; at the key limit Kion's settings and key again, the user's keys, up to three
            # versions read, a delete and a second create.
            "createSecret": self.aws_call(6) + 2 * kion_get + self.aws_call(7),
            # The version, AWSCURRENT, the Kion key (read again for the PATCH: the wait outlasts
            # its cache), Kion's settings, SES, the message, the label check, the PATCH.
            "setSecret": self.aws_call(5)
            + kion_get
            + self.ses_wait()
            + self.send_path_check()
            + self.effect(Effect.KION_PATCH),
            # The version, AWSCURRENT, the Kion key, Kion's settings, SES until it accepts.
            "testSecret": self.aws_call(3) + kion_get + self.ses_wait(),
            # The version, the Kion key, Kion's settings, AWSCURRENT, the label move and its
            # cleanup, the label check, the delete.
            "finishSecret": self.aws_call(8) + kion_get,
        }

    def slowest_step(self) -> tuple[str, float]:
        return max(self.steps().items(), key=lambda item: item[1])

    def renewal_steps(self) -> dict[str, float]:
        """Each step of the Kion API key renewal at its slowest (one spare key to delete)."""
        kion_get = self.kion_request()
        return {
            # Guards, the secret, its installation; Kion's keys, a spare deleted, the new key.
            "createSecret": self.aws_call(5)
            + kion_get
            + self.effect(Effect.KION_KEY_DELETE)
            + self.effect(Effect.KION_KEY_CREATE),
            "testSecret": self.aws_call(4) + kion_get,
            # Guards, the secret, its installation, Kion's keys, AWSCURRENT, the label move and
            # its cleanup, the keys still held, the delete.
            "finishSecret": self.aws_call(10) + kion_get + self.effect(Effect.KION_KEY_DELETE),
        }


@dataclass(frozen=True)
class TimeBudget:
    """The time left in this invocation (the Lambda context's), checked before each effect."""

    remaining_ms: Callable[[], int] | None
    worst: WorstCase
    fix: str = ROTATION_FIX

    def before(self, effect: Effect) -> None:
        """Raise TimeBudgetError unless the time left covers ``effect``'s worst case."""
        if self.remaining_ms is None:
            return
        left = self.remaining_ms() / 1000
        needed = self.worst.effect(effect)
        if left < needed:
            raise TimeBudgetError(
                f"Stopped before {effect.value}: {left:.0f} s of the invocation remain, and it "
                f"can take up to {needed:.0f} s with the configured timeouts and retries. Nothing "
                "was started that the next run cannot finish.",
                self.fix,
            )
