"""The demo's onboarding: ``adopt --check`` and ``check`` on its own Kion, before the first
rotation, with the AWS calls moto lacks answered by ``local.moto_onboarding``."""

from __future__ import annotations

import io
import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

from ..cli import main as cli
from ..cli.commands.adopt import SHIPPED_EXAMPLE
from ..cli.exit_codes import EXIT_OK, EXIT_UNCHECKED
from ..local.moto_onboarding import OnboardingCalls
from .environment import DemoEnvironment

Narrate = Callable[[str], None]
Check = Callable[[bool, str], bool]


def show_onboarding(environment: DemoEnvironment, say: Narrate, check: Check) -> bool:
    """Run ``adopt`` and ``check`` as an operator would, narrating what they print."""
    installation, kion, smtp = environment.installation, environment.kion, environment.smtp
    assert installation is not None
    assert kion is not None
    assert smtp is not None
    if environment.kion_server is None:
        say("(adopt and check are shown on the demo's own Kion only)")
        return True
    with OnboardingCalls([smtp]), tempfile.TemporaryDirectory() as folder:
        ca_file, cdk_json = Path(folder, "kion-ca.pem"), Path(folder, "cdk.json")
        ca_file.write_text(kion.ca_pem or "", encoding="utf-8")
        # As cdk.json ships: adopt puts the installation in place of the example.
        shipped = {"context": {"installations": [SHIPPED_EXAMPLE]}}
        cdk_json.write_text(json.dumps(shipped, indent=2) + "\n", encoding="utf-8")
        say(f"ses-smtp-rotator adopt --kion-url {kion.url} --check --yes  (key on stdin)")
        adopt = ["adopt", "--kion-url", kion.url, "--name", installation.name, "--check"]
        files = ["--kion-ca-bundle", str(ca_file), "--cdk-json", str(cdk_json)]
        adopted, output = _run([*adopt, "--yes", *files], stdin=kion.api_key)
        _narrate(output, say)
        written = json.loads(cdk_json.read_text(encoding="utf-8"))["context"]["installations"]
        say(f"ses-smtp-rotator check {installation.secret_name}")
        checked, output = _run(["check", installation.secret_name])
        _narrate(output, say)
    found = written == [
        {
            "name": installation.name,
            "kionUrl": kion.url,
            "sesRegion": smtp.region,
            "iamUserName": installation.iam_user_name,
            "kionCaBundle": kion.ca_pem,
        }
    ]
    held = check(
        adopted in (EXIT_OK, EXIT_UNCHECKED) and found,
        f"adopt found {installation.iam_user_name} in {smtp.region} and wrote it into cdk.json",
    )
    return check(checked == EXIT_OK, "check: every precondition of the first rotation holds") and (
        held
    )


def _run(arguments: list[str], stdin: str = "") -> tuple[int, str]:
    printed = io.StringIO()
    with redirect_stdout(printed), _piped(stdin):
        code = cli.main(arguments)
    return code, printed.getvalue()


@contextmanager
def _piped(text: str) -> Iterator[None]:
    """Standard input holding ``text``, as ``echo "$KEY" | ses-smtp-rotator ...`` gives it."""
    saved, sys.stdin = sys.stdin, io.StringIO(text + "\n")
    try:
        yield
    finally:
        sys.stdin = saved


def _narrate(output: str, say: Narrate) -> None:
    """What the command printed, without cdk.json's diff (it holds the CA's PEM text)."""
    for line in output.splitlines():
        if line.startswith(("[", "       Fix:")) or not line.startswith((" ", "+", "-", "@")):
            say(f"  {line}")
