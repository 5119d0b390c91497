"""P2's baseline: a bare script that makes the same AWS, SMTP and Kion calls as one rotation through
the handler, in the same order, and nothing else: no guards, no validation, no logging, no
metrics, no error translation. (The benchmark prints both call counts, so a change to the
handler's calls that is not made here too shows.)"""

from __future__ import annotations

import contextlib
import json
import smtplib
import ssl
from dataclasses import dataclass, field
from typing import Any

import boto3
import urllib3

from ses_smtp_rotator.functions.services.smtp_password import derive_smtp_password

APP_CONFIG = "/api/v3/app-config"


@dataclass
class BareRotation:
    """The calls of one rotation, made directly. Clients live as long as the process, like a warm
    function's; the Kion API key is read once, like the function's cache does within a minute."""

    session: boto3.Session
    secret_arn: str
    _clients: dict[str, Any] = field(default_factory=dict)
    _api_key: str | None = None

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service)
        return self._clients[service]

    def rotate(self, token: str) -> None:
        """Rotate the secret to version ``token`` (already labelled AWSPENDING)."""
        secretsmanager, iam = self.client("secretsmanager"), self.client("iam")
        arn = self.secret_arn
        # createSecret
        secretsmanager.describe_secret(SecretId=arn)
        with contextlib.suppress(secretsmanager.exceptions.ResourceNotFoundException):
            secretsmanager.get_secret_value(SecretId=arn, VersionId=token)
        current = json.loads(
            secretsmanager.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"]
        )
        key = iam.create_access_key(UserName=current["iam_user_name"])["AccessKey"]
        username = key["AccessKeyId"]
        password = derive_smtp_password(key["SecretAccessKey"], current["ses_region"])
        secretsmanager.put_secret_value(
            SecretId=arn,
            ClientRequestToken=token,
            SecretString=json.dumps({**current, "username": username, "password": password}),
            VersionStages=["AWSPENDING"],
        )
        # setSecret: the pending version, and AWSCURRENT to compare its settings with
        secretsmanager.get_secret_value(SecretId=arn, VersionId=token)
        secretsmanager.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")
        while not self._smtp_login(current, username, password):
            pass
        kion = self._kion(current)
        self._kion_request(
            kion, current, "PATCH", {"smtp_username": username, "smtp_password": password}
        )
        # testSecret
        secretsmanager.get_secret_value(SecretId=arn, VersionId=token)
        secretsmanager.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")
        self._kion_request(kion, current, "GET")
        self._smtp_login(current, username, password)
        # finishSecret
        secretsmanager.get_secret_value(SecretId=arn, VersionId=token)
        self._kion_request(kion, current, "GET")
        current_version = secretsmanager.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")
        secretsmanager.update_secret_version_stage(
            SecretId=arn,
            VersionStage="AWSCURRENT",
            MoveToVersionId=token,
            RemoveFromVersionId=current_version["VersionId"],
        )
        iam.delete_access_key(UserName=current["iam_user_name"], AccessKeyId=current["username"])

    def _kion(self, current: dict[str, Any]) -> urllib3.PoolManager:
        context = ssl.create_default_context(cadata=current.get("kion_ca_bundle"))
        return urllib3.PoolManager(ssl_context=context)

    def _kion_request(
        self,
        http: urllib3.PoolManager,
        current: dict[str, Any],
        method: str,
        body: dict[str, Any] | None = None,
    ) -> Any:
        if self._api_key is None:
            stored = self.client("secretsmanager").get_secret_value(
                SecretId=current["kion_api_key_secret_id"]
            )["SecretString"]
            self._api_key = json.loads(stored)["api_key"] if stored.startswith("{") else stored
        response = http.request(
            method,
            current["kion_url"] + APP_CONFIG,
            body=None if body is None else json.dumps(body),
            headers={
                "Authorization": f"Bearer {self._api_key}",
                "Content-Type": "application/json",
            },
        )
        return json.loads(response.data)

    def _smtp_login(self, current: dict[str, Any], username: str, password: str) -> bool:
        context = ssl.create_default_context(cadata=current.get("smtp_ca_bundle"))
        with smtplib.SMTP(current["smtp_host"], current["smtp_port"], timeout=10) as session:
            session.starttls(context=context)
            try:
                session.login(username, password)
            except smtplib.SMTPAuthenticationError:
                return False
            return True
