"""One error type per cause an operator can act on.

Every message names what went wrong and what to do about it, and never carries a secret value.
"""

from __future__ import annotations


class RotationError(Exception):
    """Base class: a rotation step could not complete. ``cause`` and ``fix`` are plain sentences."""

    def __init__(self, cause: str, fix: str) -> None:
        self.cause = cause
        self.fix = fix
        super().__init__(f"{cause} Fix: {fix}")


class InvalidSecretError(RotationError):
    """The installation secret is malformed, misses a field or holds a bad value."""

    def __init__(self, field: str | None, problem: str, fix: str) -> None:
        self.field = field
        subject = f"field '{field}'" if field else "value"
        super().__init__(f"The installation secret's {subject} {problem}.", fix)


class KionApiKeyError(RotationError):
    """The secret that should hold Kion's App API key is missing, empty or of the wrong shape."""


class RotationStateError(RotationError):
    """The secret's versions are not in the state this rotation step expects."""


class RotationInProgressError(RotationStateError):
    """A rotation of the secret is unfinished (AWSPENDING apart from AWSCURRENT)."""


class RollbackRefusedError(RotationError):
    """A rollback cannot go back to the previous key: it is gone, not this installation's,
    changed by hand, or its window has passed."""


class KeyLimitError(RotationError):
    """The IAM user already has two access keys and neither may be deleted."""


class UnrecognisedNewKeysError(RotationError):
    """After a lost CreateAccessKey reply, more than one unknown access key appeared on the user,
    so the one this step made (an orphan) cannot be told apart."""


class AwsPermissionError(RotationError):
    """An AWS call was refused (AccessDenied) or failed in a way the role or setup must fix."""


class AccountAccessError(AwsPermissionError):
    """The installation's IAM user is in another account, and the function cannot act there:
    the access role is not set, not deployed, or does not trust the function."""


class AwsConnectionError(RotationError):
    """An AWS API could not be reached, did not answer in time, or failed on its side (5xx,
    throttling)."""


class SesAuthError(RotationError):
    """SES SMTP refused the credential (535) for longer than the wait allows."""


class SmtpConnectionError(RotationError):
    """The SES SMTP endpoint could not be reached, timed out or broke the protocol."""


class SmtpTlsError(RotationError):
    """TLS with the SES SMTP endpoint failed (certificate not trusted, name mismatch)."""


class KionAuthError(RotationError):
    """Kion rejected the App API key (401)."""


class KionPermissionError(RotationError):
    """Kion accepted the key but its user may not manage system settings (403)."""


class KionNotFoundError(RotationError):
    """Kion answered 404: the Kion URL is probably wrong."""


class KionRequestError(RotationError):
    """Kion answered with another error status, or a reply that is not Kion's JSON."""


class KionConnectionError(RotationError):
    """Kion could not be reached: connection refused, timeout or TLS failure."""


class KionStateError(RotationError):
    """Kion's SMTP settings are not what this rotation step expects."""


class KionEndpointError(RotationError):
    """Kion sends where a credential of this installation's region would not work (another
    region, partition or an undeclared relay), or its SMTP settings say too little to tell."""

    def __init__(self, cause: str, fix: str, kind: str = "") -> None:
        self.kind = kind
        super().__init__(cause, fix)


class SesSendRefusedError(RotationError):
    """SES accepted the credential's login but refused the send-path check's message (sender not
    verified, a ses:FromAddress condition, sending paused, throttling)."""


class RollbackWindowError(RotationError):
    """The IAM user has two access keys and the one to make room is a retired key still in its
    rollback window, which the operator has not ended."""


class TimeBudgetError(RotationError):
    """Too little of the invocation is left to finish an effect: the step stopped before it."""
