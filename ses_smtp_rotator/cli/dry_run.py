"""What a rotation of one installation would do, told without changing anything (``rotate
--dry-run``): the key it makes and for which IAM user, the key it retires, what it proves before
Kion gets the new key, and what would stop it now."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ses_smtp_rotator.cli.aws_access import AwsAccess, SetupError, asking, user_elsewhere
from ses_smtp_rotator.cli.secret_state import CURRENT, read_state, require_installation_secret
from ses_smtp_rotator.functions.errors import RotationError
from ses_smtp_rotator.functions.installation_secret import InstallationSecret

IAM_KEY_LIMIT = 2


def dry_run(aws: AwsAccess, secret_id: str) -> str:
    """The plan of a rotation of ``secret_id`` now, as lines of text."""
    secretsmanager = aws.client("secretsmanager")
    state = read_state(secretsmanager, secret_id)
    require_installation_secret(state)
    with asking("secretsmanager:GetSecretValue", f"secret {state.name}"):
        value = secretsmanager.get_secret_value(SecretId=state.arn, VersionStage=CURRENT)
    try:
        secret = InstallationSecret.parse(value.get("SecretString"))
    except RotationError as error:
        raise SetupError(error.cause, error.fix) from None
    replaced = secret.access_key_id or None
    lines = [f"{state.name}: a rotation now would (nothing was changed)"]
    if state.pending_version:
        lines.append(
            f"  not start: version {state.pending_version} is AWSPENDING (a rotation in "
            f"progress). See: ses-smtp-rotator status {state.name}"
        )
        return "\n".join(lines)
    elsewhere = user_elsewhere(secret.ses_account, state.arn)
    keys = (
        f"the user is in account {elsewhere}, which the rotation function reaches through "
        "its access role"
        if elsewhere
        else _user_keys(aws, secret.iam_user_name)
    )
    if isinstance(keys, str):
        lines.append(f"  ? the IAM user's keys are not known here: {keys}")
    else:
        others = [key for key in keys if key != replaced]
        lines.append(
            f"  - IAM user {secret.iam_user_name} has {len(keys)} of {IAM_KEY_LIMIT} access keys"
            + (f" ({', '.join(keys)})" if keys else "")
        )
        if len(keys) >= IAM_KEY_LIMIT and others:
            lines.append(
                f"  - make room first: {', '.join(others)} is deleted only if it is provably "
                "this installation's spare key, unused by AWSCURRENT, AWSPENDING and Kion; "
                "otherwise createSecret stops with the key limit named"
            )
    lines.append(
        f"  1 createSecret: create a new access key for {secret.iam_user_name} and store its "
        f"SES SMTP password for {secret.ses_region} as AWSPENDING"
    )
    proof = f"SMTP AUTH at {secret.smtp_host}:{secret.smtp_port}"
    if secret.send_path_check:
        proof += ", then a message from Kion's sender to the SES mailbox simulator"
    lines.append(
        f"  2 setSecret: wait until SES accepts the new key repeatedly ({proof}), then give it "
        f"to Kion at {secret.kion_url}"
    )
    lines.append("  3 testSecret: read Kion's settings back and log in to SES once more")
    lines.append(
        "  4 finishSecret: make the new version AWSCURRENT and retire the key it replaces"
        + (f", {replaced}" if replaced else " (the key Kion holds now: adopted on this first run)")
    )
    return "\n".join(lines)


def _user_keys(aws: AwsAccess, user_name: str) -> list[str] | str:
    """The IAM user's access key ids, or why they cannot be read."""
    try:
        listed: Any = aws.client("iam").list_access_keys(UserName=user_name)
    except ClientError as error:
        return f"iam:ListAccessKeys answered {error.response.get('Error', {}).get('Code', '?')}"
    except BotoCoreError as error:
        return f"IAM did not answer ({type(error).__name__})"
    return sorted(key["AccessKeyId"] for key in listed.get("AccessKeyMetadata", []))
