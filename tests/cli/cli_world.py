"""Helpers for the command line's tests: the demo's world (moto's server, the SES SMTP and Kion
stand-ins, and the rotation function in its own process, all on loopback), settling it between
tests, running the command line, and scanning its output for secrets."""

from __future__ import annotations

import io
import json
import sys
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from datetime import timedelta
from typing import Any, TextIO

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import iam_backends
from moto.secretsmanager.models import secretsmanager_backends

from ses_smtp_rotator.cli import main as cli
from ses_smtp_rotator.demo import DemoEnvironment
from ses_smtp_rotator.demo.environment import FUNCTION_NAME, LOG_GROUP, REGION
from ses_smtp_rotator.functions.retired_keys import END_WINDOW_TAG, RETIRED_TAG_PREFIX

# Short waits so that failures are quick; the rotation is retried once, as Secrets Manager does.
FUNCTION_ENVIRONMENT = {
    "SES_ACCEPT_TIMEOUT_SECONDS": "3",
    "SES_ACCEPT_MIN_SPAN_SECONDS": "0.2",
    "KION_TIMEOUT_SECONDS": "2",
    "KION_RETRIES": "0",
}


def make_world() -> DemoEnvironment:
    return DemoEnvironment(
        propagation_delay=0.3,
        function_environment=FUNCTION_ENVIRONMENT,
        rotation_retries=0,
        register_functions=False,  # the tests configure the function as each needs
    )


def settle(demo: DemoEnvironment) -> None:
    """Let any rotation end, take every fault off, and abandon an unfinished rotation (and
    rollback)."""
    assert demo.hook is not None
    assert demo.smtp is not None
    assert demo.kion_server is not None
    assert demo.hook.wait_idle(timeout=30)
    demo.smtp.refuse_all = False
    demo.kion_server.clear_faults()
    secretsmanager = demo.client("secretsmanager")
    secret_arn = installation(demo).secret_arn
    stages = secretsmanager.describe_secret(SecretId=secret_arn)["VersionIdsToStages"]
    for version_id, labels in stages.items():
        if "AWSPENDING" in labels and "AWSCURRENT" not in labels:
            secretsmanager.update_secret_version_stage(
                SecretId=secret_arn, VersionStage="AWSPENDING", RemoveFromVersionId=version_id
            )
        if "ROLLBACK" in labels:  # a rollback a test left unfinished
            secretsmanager.update_secret_version_stage(
                SecretId=secret_arn, VersionStage="ROLLBACK", RemoveFromVersionId=version_id
            )
    # The operator waits past the function's timeout before rotating again: createSecret leaves
    # a key younger than that alone (it may belong to a step still running).
    for backend in iam_backends[demo.user_account].values():
        for key in backend.access_keys.values():
            key.create_date -= timedelta(hours=1)
    # ... and past the rollback window: the watch has deleted the keys earlier rotations retired.
    iam = demo.user_iam()
    user = installation(demo).iam_user_name
    tags = secretsmanager.describe_secret(SecretId=secret_arn).get("Tags", [])
    records = [tag["Key"] for tag in tags if tag["Key"].startswith(RETIRED_TAG_PREFIX)]
    statuses = {
        key["AccessKeyId"]: key["Status"]
        for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    }
    for record in records:
        if statuses.get(record.removeprefix(RETIRED_TAG_PREFIX)) == "Inactive":
            iam.delete_access_key(
                UserName=user, AccessKeyId=record.removeprefix(RETIRED_TAG_PREFIX)
            )
    if records:
        secretsmanager.untag_resource(SecretId=secret_arn, TagKeys=[*records, END_WINDOW_TAG])


def installation(demo: DemoEnvironment) -> Any:
    assert demo.installation is not None
    return demo.installation


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run ``ses-smtp-rotator ARGS`` in this process; returns the exit code and all output."""
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def secret_values(demo: DemoEnvironment) -> set[str]:
    """Every secret the demo's world holds: SMTP passwords of every version, the Kion API key,
    and the secret access keys of every IAM key ever made (from moto's backend)."""
    secretsmanager = demo.client("secretsmanager")
    found: set[str] = {demo.kion.api_key} if demo.kion else set()
    secret_arn = installation(demo).secret_arn
    listed = secretsmanager.list_secret_version_ids(SecretId=secret_arn, IncludeDeprecated=True)
    for version in listed["Versions"]:
        try:
            value = secretsmanager.get_secret_value(
                SecretId=secret_arn, VersionId=version["VersionId"]
            )
        except secretsmanager.exceptions.ResourceNotFoundException:
            continue
        password = json.loads(value["SecretString"]).get("password")
        if password:
            found.add(password)
    for backend in iam_backends[demo.user_account].values():
        for key in backend.access_keys.values():
            found.add(key.secret_access_key)
    return found


def assert_no_secret(output: str, demo: DemoEnvironment) -> None:
    leaked = [value[:4] + "…" for value in secret_values(demo) if value in output]
    assert not leaked, f"secrets printed: {leaked}"


def leave_rotation_pending(
    demo: DemoEnvironment,
    *,
    made_ago: float = 0.0,
    records: Sequence[tuple[float, str, str, str]] = (),
    secret_arn: str | None = None,
    changed: dict[str, str] | None = None,
) -> str:
    """A rotation in progress as Secrets Manager leaves one: a pending version (a copy of
    AWSCURRENT with the ``changed`` fields) made ``made_ago`` seconds ago, and the function's log
    records about it, each ``(seconds ago, level, step, message)``. Returns the version id."""
    secretsmanager = demo.client("secretsmanager")
    secret_arn = secret_arn or installation(demo).secret_arn
    current = secretsmanager.get_secret_value(SecretId=secret_arn, VersionStage="AWSCURRENT")
    value = json.loads(current["SecretString"]) | (changed or {})
    version_id = secretsmanager.put_secret_value(
        SecretId=secret_arn, SecretString=json.dumps(value), VersionStages=["AWSPENDING"]
    )["VersionId"]
    if made_ago:
        backend = secretsmanager_backends[DEFAULT_ACCOUNT_ID][REGION]
        backend.secrets[secret_arn].versions[version_id]["createdate"] = int(time.time() - made_ago)
    if records:
        logs = demo.client("logs")
        stream = _left_records_stream(version_id)
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
        now = time.time()
        events = [
            {
                "timestamp": int((now - ago) * 1000),
                "message": json.dumps(
                    {
                        "level": level,
                        "step": step,
                        "message": message,
                        "client_request_token": version_id,
                    }
                ),
            }
            for ago, level, step, message in sorted(records, key=lambda record: -record[0])
        ]
        logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream, logEvents=events)
    return version_id


def _left_records_stream(version_id: str) -> str:
    return f"earlier/[$LATEST]{uuid.UUID(version_id).hex}"


def age_left_records(demo: DemoEnvironment, version_id: str, seconds: float) -> None:
    """The records :func:`leave_rotation_pending` wrote about ``version_id``, ``seconds`` older:
    what the command line sees of them once that much time has passed, without waiting."""
    logs, stream = demo.client("logs"), _left_records_stream(version_id)
    events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=True)
    logs.delete_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
    older = int(seconds * 1000)
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName=stream,
        logEvents=[
            {"timestamp": event["timestamp"] - older, "message": event["message"]}
            for event in events["events"]
        ],
    )


@contextmanager
def function_configured(demo: DemoEnvironment, *, timeout: int) -> Iterator[None]:
    """The rotation function as Lambda knows it (GetFunctionConfiguration), with ``timeout``."""
    role = demo.client("iam").create_role(
        RoleName=f"rotation-function-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("handler.py", "def lambda_handler(event, context):\n    return None\n")
    lambda_client = demo.client("lambda")
    lambda_client.create_function(
        FunctionName=FUNCTION_NAME,
        Runtime="python3.12",
        Role=role,
        Handler="handler.lambda_handler",
        Code={"ZipFile": archive.getvalue()},
        Timeout=timeout,
    )
    try:
        yield
    finally:
        lambda_client.delete_function(FunctionName=FUNCTION_NAME)


class _ActsOnText(io.TextIOBase):
    """Standard output that passes every write on and runs ``action`` once one holds ``text``."""

    def __init__(self, target: TextIO, text: str, action: Callable[[], object]) -> None:
        self._target, self._text, self._action = target, text, action
        self._acted = False

    def write(self, written: str) -> int:
        count = self._target.write(written)
        if not self._acted and self._text in written:
            self._acted = True
            self._action()
        return count

    def flush(self) -> None:
        self._target.flush()


@contextmanager
def when_printed(text: str, action: Callable[[], object]) -> Iterator[None]:
    """Inside the block, ``action`` runs as soon as the command line prints ``text``: the world
    changes exactly when the command has reached that point, with no time window."""
    with redirect_stdout(_ActsOnText(sys.stdout, text, action)):
        yield
