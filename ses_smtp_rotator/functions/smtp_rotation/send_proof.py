"""The send-path check: one message, with the new credential, from Kion's sender to the SES
mailbox simulator, before Kion gets the credential.

A login proves the key's signature only. Whether SES lets this user send from Kion's address
(identity verified, no ``ses:FromAddress`` condition against it, account not paused) is answered
only when a message is sent. The simulator accepts mail in the sandbox and in production, and
counts against the sending rate but not the daily quota. No other recipient is ever used.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from ses_smtp_rotator.functions.errors import SesAuthError, SesSendRefusedError, SmtpConnectionError
from ses_smtp_rotator.functions.services.ses_smtp import SmtpEndpoint, authenticate, smtp_session

SIMULATOR = "success@simulator.amazonses.com"
THROTTLED = 454
ATTEMPTS = 3
PAUSE = 1.0


@dataclass
class SendPathProof:
    """Sends the check message; a throttled send, or one whose connection failed, is tried
    ``attempts`` times in all (the simulator may then get the message twice, which costs one
    more message and nothing else)."""

    endpoint: SmtpEndpoint
    ses_region: str
    attempts: int = ATTEMPTS
    pause: float = PAUSE
    sleep: Callable[[float], None] = time.sleep

    def send(self, username: str, password: str, sender: str) -> None:
        """Raise SesSendRefusedError (or SesAuthError) naming SES's refusal and its fix."""
        for attempt in range(1, self.attempts + 1):
            try:
                code, reply = self._send_once(username, password, sender)
            except SmtpConnectionError:
                if attempt == self.attempts:
                    raise
                self.sleep(self.pause * attempt)
                continue
            if code is None:
                return
            if code != THROTTLED or attempt == self.attempts:
                raise self._refusal(code, reply, username, sender)
            self.sleep(self.pause * attempt)

    def _send_once(self, username: str, password: str, sender: str) -> tuple[int | None, str]:
        with smtp_session(self.endpoint) as session:
            try:
                authenticate(session, username, password)
            except smtplib.SMTPAuthenticationError:
                raise SesAuthError(
                    f"SES SMTP at {self.endpoint} refused access key {username} for the "
                    "send-path check, after accepting it in a row moments before.",
                    "The key is still propagating or was deactivated; Secrets Manager retries "
                    "the rotation. Kion was left unchanged.",
                ) from None
            try:
                session.sendmail(sender, [SIMULATOR], _message(sender).as_bytes())
            except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as refused:
                return refused.smtp_code, _text(refused.smtp_error)
            except smtplib.SMTPRecipientsRefused as refused:
                code, reply = refused.recipients.get(SIMULATOR, (550, b""))
                return code, _text(reply)
        return None, ""

    def _refusal(self, code: int, reply: str, username: str, sender: str) -> SesSendRefusedError:
        said = f"SES at {self.endpoint} refused the send-path check from {sender} ({code} {reply})"
        lowered = reply.lower()
        if "not verified" in lowered:
            fix = (
                f"Verify {sender} or its domain as an SES identity in {self.ses_region} (in the "
                "SES sandbox, recipients must be verified too: request production access)."
            )
        elif "not authorized" in lowered or "access denied" in lowered:
            fix = (
                f"Allow the IAM user of key {username} ses:SendRawEmail from {sender}: check its "
                "policy's ses:FromAddress condition and any SCP or permissions boundary."
            )
        elif "paused" in lowered:
            fix = (
                f"Sending is paused for this account in {self.ses_region}: resolve the cause in "
                "the SES console (reputation or account status), then rotate again."
            )
        elif code == THROTTLED:
            fix = (
                "SES throttled the account (maximum send rate or daily quota); rotate again "
                "later, or request a higher sending quota."
            )
        else:
            fix = f"Fix what SES names for key {username} and sender {sender}, then rotate again."
        return SesSendRefusedError(
            f"{said}. Kion was left unchanged.",
            fix + " To skip this check, set send_path_check to false for the installation.",
        )


def _message(sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = SIMULATOR
    message["Subject"] = "SES SMTP credential check before Kion's credential is rotated"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1])
    message.set_content(
        "This message proves that a new SES SMTP credential may send from Kion's address.\n"
        "It goes to the SES mailbox simulator only.\n"
    )
    return message


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())[:300]
