"""The demo's last part: one rotation of an installation whose SES user is in a second account,
by the command line in the deployment account, through the access role."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from contextlib import redirect_stdout

from moto.core import DEFAULT_ACCOUNT_ID

from ..cli import main as cli
from ..cli.exit_codes import EXIT_OK
from .environment import DemoEnvironment

SES_ACCOUNT = "210987654321"
Check = Callable[[bool, str], bool]


def rotate_in_another_account(
    propagation_delay: float, say: Callable[[str], None], check: Check
) -> bool:
    """Start the stand-ins again with the IAM user in account SES_ACCOUNT, rotate once, and show
    where the keys are."""
    with DemoEnvironment(
        propagation_delay=propagation_delay,
        installation_name="kion-b",
        register_functions=False,
        ses_account=SES_ACCOUNT,
    ) as environment:
        installation = environment.installation
        assert installation is not None
        assert environment.kion is not None
        os.environ.update(environment.aws_environment())
        say(
            f"ses-smtp-rotator rotate {installation.secret_name} --wait  (its IAM user is in "
            f"account {SES_ACCOUNT}; the function assumes the access role there)"
        )
        with redirect_stdout(io.StringIO()):
            code = cli.main(["rotate", installation.secret_name, "--wait", "--poll", "0.2"])
        assert environment.hook is not None
        environment.hook.wait_idle(timeout=30)
        kion_key = environment.kion.smtp_credential()[0]
        listed = environment.user_iam().list_access_keys(UserName=installation.iam_user_name)
        there = {key["AccessKeyId"]: key["Status"] for key in listed["AccessKeyMetadata"]}
        here = environment.client("iam").list_users()["Users"]
        return check(
            code == EXIT_OK and there.get(kion_key) == "Active" and not here,
            f"Kion sends with {kion_key}, made in account {SES_ACCOUNT} "
            f"(keys there: {', '.join(f'{k} {s}' for k, s in sorted(there.items()))}); "
            f"no IAM user in the deployment account {DEFAULT_ACCOUNT_ID}",
        )
