"""P2's baseline: one rotation written as plainly as possible with boto3, smtplib and urllib3,
making the same proof as the handler: the stage checks before each step and each effect, the
settings compared with AWSCURRENT's, Kion's SMTP settings read where the handler reads them,
three accepted logins over the acceptance span at the port the secret names (a refused one
tried again a second later), the send-path message from Kion's sender to the mailbox simulator,
Kion's settings read back, one more login, and the replaced key deactivated and recorded. No
error translation, logging, metrics, tracing or time budget. (The benchmark prints both call
counts, so a change to the handler's calls that is not made here too shows.)"""

from __future__ import annotations

import contextlib
import json
import smtplib
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import boto3
import urllib3

from ses_smtp_rotator.functions.services.smtp_password import derive_smtp_password

APP_CONFIG = "/api/v3/app-config"
SIMULATOR = "success@simulator.amazonses.com"
SETTINGS = ("ses_region", "iam_user_name", "kion_url", "kion_api_key_secret_id", "smtp_host")


@dataclass
class BareRotation:
    """The work of one rotation, done directly. Clients live as long as the process, like a warm
    function's; the Kion API key is read once, like the function's cache does within a minute."""

    session: boto3.Session
    secret_arn: str
    logins: int = 3
    span: float = 2.0
    _clients: dict[str, Any] = field(default_factory=dict)
    _api_key: str | None = None

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service)
        return self._clients[service]

    def rotate(self, token: str) -> None:
        """Rotate the secret to version ``token`` (already labelled AWSPENDING)."""
        sm, iam, arn = self.client("secretsmanager"), self.client("iam"), self.secret_arn

        # createSecret: the token is AWSPENDING and has no value yet; a new key's password
        assert "AWSPENDING" in self._stages(token)
        with contextlib.suppress(sm.exceptions.ResourceNotFoundException):
            sm.get_secret_value(SecretId=arn, VersionId=token)
        current = self._value(VersionStage="AWSCURRENT")
        key = iam.create_access_key(UserName=current["iam_user_name"])["AccessKey"]
        username = key["AccessKeyId"]
        password = derive_smtp_password(key["SecretAccessKey"], current["ses_region"])
        pending = {**current, "username": username, "password": password}
        pending["replaces"] = current["username"]
        sm.put_secret_value(
            SecretId=arn,
            ClientRequestToken=token,
            SecretString=json.dumps(pending),
            VersionStages=["AWSPENDING"],
        )

        # setSecret: prove the key where Kion sends, then give it to Kion
        pending = self._pending(token)
        kion = self._kion(pending)
        sender = self._kion_config(kion, pending, "GET")["smtp_from"]
        self._accepted_logins(pending, self.logins, self.span)
        self._send(pending, sender)
        assert "AWSPENDING" in self._stages(token)
        self._kion_config(kion, pending, "PATCH", smtp_username=username, smtp_password=password)

        # testSecret: Kion holds the key, SES accepts it
        pending = self._pending(token)
        assert self._kion_config(kion, pending, "GET")["smtp_username"] == username
        self._accepted_logins(pending, 1, 0.0)

        # finishSecret: AWSCURRENT moves; the replaced key is deactivated and recorded
        pending = self._pending(token)
        assert self._kion_config(kion, pending, "GET")["smtp_username"] == username
        current_version = sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")
        sm.update_secret_version_stage(
            SecretId=arn,
            VersionStage="AWSCURRENT",
            MoveToVersionId=token,
            RemoveFromVersionId=current_version["VersionId"],
        )
        described = sm.describe_secret(SecretId=arn)  # labels and tags, after the move
        if "AWSPENDING" in described["VersionIdsToStages"][token]:
            sm.update_secret_version_stage(
                SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=token
            )
        replaced = current["username"]
        assert "AWSCURRENT" in described["VersionIdsToStages"][token]
        keys = iam.list_access_keys(UserName=pending["iam_user_name"])["AccessKeyMetadata"]
        assert any(k["AccessKeyId"] == replaced for k in keys)
        tags = described.get("Tags", [])
        iam.get_access_key_last_used(AccessKeyId=replaced)
        iam.update_access_key(
            UserName=pending["iam_user_name"], AccessKeyId=replaced, Status="Inactive"
        )
        deactivated = f"deactivated={datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} origin=made used=unknown"
        tags.append({"Key": f"ses-smtp-rotator:retired:{replaced}", "Value": deactivated})
        sm.tag_resource(SecretId=arn, Tags=tags[-1:])

    def _stages(self, token: str) -> list[str]:
        described = self.client("secretsmanager").describe_secret(SecretId=self.secret_arn)
        return described["VersionIdsToStages"].get(token, [])

    def _value(self, **selector: str) -> dict[str, Any]:
        sm = self.client("secretsmanager")
        return json.loads(sm.get_secret_value(SecretId=self.secret_arn, **selector)["SecretString"])

    def _pending(self, token: str) -> dict[str, Any]:
        """The pending version, once its settings are still AWSCURRENT's."""
        pending = self._value(VersionId=token)
        current = self._value(VersionStage="AWSCURRENT")
        assert all(pending.get(name) == current.get(name) for name in SETTINGS)
        return pending

    def _kion(self, secret: dict[str, Any]) -> urllib3.PoolManager:
        context = ssl.create_default_context(cadata=secret.get("kion_ca_bundle"))
        return urllib3.PoolManager(ssl_context=context)

    def _kion_config(
        self, http: urllib3.PoolManager, secret: dict[str, Any], method: str, **fields: str
    ) -> Any:
        if self._api_key is None:
            stored = self.client("secretsmanager").get_secret_value(
                SecretId=secret["kion_api_key_secret_id"], VersionStage="AWSCURRENT"
            )["SecretString"]
            self._api_key = json.loads(stored)["api_key"] if stored.startswith("{") else stored
        response = http.request(
            method,
            secret["kion_url"] + APP_CONFIG,
            body=json.dumps(fields) if fields else None,
            headers={
                "Authorization": f"Bearer {self._api_key}",
                "Content-Type": "application/json",
            },
        )
        return json.loads(response.data).get("data", {})

    def _smtp(self, secret: dict[str, Any]) -> smtplib.SMTP:
        context = ssl.create_default_context(cadata=secret.get("smtp_ca_bundle"))
        session = smtplib.SMTP(secret["smtp_host"], secret["smtp_port"], timeout=10)
        session.starttls(context=context)
        return session

    def _login(self, secret: dict[str, Any]) -> bool:
        with self._smtp(secret) as session:
            try:
                session.login(secret["username"], secret["password"])
            except smtplib.SMTPAuthenticationError:
                return False
            return True

    def _accepted_logins(self, secret: dict[str, Any], logins: int, span: float) -> None:
        """``logins`` accepted logins in a row, ``span`` seconds apart in all; a refused one is
        tried again a second after it began."""
        in_row = 0
        while in_row < logins:
            began = time.monotonic()
            if self._login(secret):
                in_row += 1
                if in_row < logins:
                    time.sleep(span / (logins - 1))
            else:
                in_row = 0
                time.sleep(max(0.0, began + 1.0 - time.monotonic()))

    def _send(self, secret: dict[str, Any], sender: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = sender, SIMULATOR, "credential check"
        message.set_content("This message proves that a new SES SMTP credential may send.\n")
        with self._smtp(secret) as session:
            session.login(secret["username"], secret["password"])
            session.send_message(message)
