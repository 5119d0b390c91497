"""A second account for the demo's installation: its IAM user there, reached by the functions
through the access role, as the access stack ``<stackName>-Access`` deploys it.

The rotation and the watch run as execution roles of the deployment account (their credentials
are those roles' sessions); the access role trusts exactly those roles, and moto's STS refuses
anyone else (``local/role_trust.py``), as the real one does.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from typing import Any

import boto3
from moto.core import DEFAULT_ACCOUNT_ID

from ..local.role_trust import role_trust_checked

ACCESS_ROLE_NAME = "ses-smtp-rotator-demo-access"
ROLE_TEMPLATE = f"arn:aws:iam::{{account}}:role/{ACCESS_ROLE_NAME}"


class SesAccount:
    """The SES account's IAM and the environment that lets the functions reach it."""

    def __init__(self, account: str, endpoint_url: str, region: str) -> None:
        self.account = account
        self._endpoint_url = endpoint_url
        self._region = region
        self._stack = ExitStack()
        self.iam: Any = self._iam_as(f"arn:aws:iam::{account}:role/demo-administrator")

    def deploy_access_role(self, function_names: tuple[str, ...]) -> dict[str, dict[str, str]]:
        """The access role trusting one execution role per function; each function's
        environment (its role's credentials, the account and role settings the stack sets)."""
        deployment_iam = self._client("iam")
        roles = {}
        for name in function_names:
            roles[name] = deployment_iam.create_role(
                RoleName=f"{name}-execution", AssumeRolePolicyDocument="{}"
            )["Role"]["Arn"]
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": sorted(roles.values())},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        self.iam.create_role(RoleName=ACCESS_ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))
        environments = {name: self._environment(arn) for name, arn in roles.items()}
        self._stack.enter_context(role_trust_checked())
        return environments

    def close(self) -> None:
        self._stack.close()

    def _environment(self, role_arn: str) -> dict[str, str]:
        credentials = self._client("sts").assume_role(RoleArn=role_arn, RoleSessionName="lambda")[
            "Credentials"
        ]
        return {
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
            "DEPLOYMENT_ACCOUNT_ID": DEFAULT_ACCOUNT_ID,
            "SES_ACCESS_ROLE_ARN": ROLE_TEMPLATE,
        }

    def _iam_as(self, role_arn: str) -> Any:
        credentials = self._client("sts").assume_role(RoleArn=role_arn, RoleSessionName="setup")[
            "Credentials"
        ]
        return self._client(
            "iam",
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )

    def _client(self, service: str, **credentials: str) -> Any:
        defaults = {"aws_access_key_id": "demo", "aws_secret_access_key": "demo"}
        return boto3.client(
            service,
            endpoint_url=self._endpoint_url,
            region_name=self._region,
            **(credentials or defaults),
        )
