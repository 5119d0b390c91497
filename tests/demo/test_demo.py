"""``make demo``, run as a newcomer runs it: a separate process that must prove two rotations, stop
every server it started (also on Ctrl-C and on failure), and print no secret."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest
from safety.secret_scan import find_leaks

from ses_smtp_rotator.functions.services.smtp_password import derive_smtp_password
from ses_smtp_rotator.local.kion_server import KionStandIn
from ses_smtp_rotator.local.tls import LoopbackCertificates

PORT = re.compile(r"(?:127\.0\.0\.1):(\d+)")
# Secret access keys are 40 characters of base64, SMTP passwords 44: no such run may be printed.
SECRET_SHAPED = re.compile(r"[A-Za-z0-9/+=]{40,}")


def demo_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ses_smtp_rotator.demo", "--propagation-delay", "0.5", *args]


def run_demo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        demo_command(*args),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        env={**os.environ, **(env or {})},
    )


def lines_until(process: subprocess.Popen[str], marker: str, bound: float = 90.0) -> list[str]:
    """The child's output lines up to the first holding ``marker``; fails, rather than hangs,
    when none comes within ``bound`` seconds or the output ends first."""
    assert process.stdout is not None
    received: queue.Queue[str | None] = queue.Queue()

    def read(stream: IO[str]) -> None:
        for line in stream:
            received.put(line)
            if marker in line:
                break
        else:
            received.put(None)

    threading.Thread(target=read, args=(process.stdout,), daemon=True).start()
    lines: list[str] = []
    deadline = time.monotonic() + bound
    while not lines or marker not in lines[-1]:
        try:
            line = received.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            process.kill()
            raise AssertionError(f"no '{marker}' from the child: {''.join(lines)}") from None
        assert line is not None, f"the child's output ended before '{marker}': {''.join(lines)}"
        lines.append(line)
    return lines


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def children_of(pid: int) -> set[int]:
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.add(int(stat.parent.name))
    return children


def test_two_rotations_are_proven_and_every_server_stops():
    result = run_demo()

    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout
    # Two rotations, the Kion API key's renewal by the watch, and one more on the new key.
    assert output.count("✓ Rotation finished") == 3
    assert output.count("✓ Kion's SMTP username is the new key") == 3
    assert output.count("✓ SES accepts the credential Kion is configured with") == 3
    # Each replaced key is kept Inactive with its deletion date (three rotations, one rollback).
    assert len(re.findall(r"✓ the replaced key \S+ is Inactive, deleted after \d{4}-", output)) == 4
    assert output.count("Ended the rollback window of") == 2  # rotations 2 and 3 come at once
    assert output.count("✓ AWSCURRENT moved") == 3
    rollback_at = output.index("Rollback: ses-smtp-rotator rollback")
    assert output.index("Rotation 2:") < rollback_at < output.index("Kion API key renewal:")
    assert "✓ Rolled back: Kion and AWSCURRENT" in output
    assert "✓ Kion and AWSCURRENT are back on" in output
    assert "started the renewal of: kion/kion-api-key" in output
    assert "✓ Kion saw POST /api/v3/app-api-key, then DELETE /api/v3/app-api-key/1" in output
    assert "✓ Kion no longer has the old key 1" in output
    renewal_at = output.index("Kion API key renewal")
    assert renewal_at < output.index("Rotation 3, on the new Kion API key")
    assert "checked by the watch" in output  # status asked the watch for Kion's side
    # Before the first rotation: adopt found the installation, check found nothing failing.
    assert "✓ adopt found kion-ses-smtp in us-east-1 and wrote it into cdk.json" in output
    assert "✓ check: every precondition of the first rotation holds" in output
    assert output.index("✓ check:") < output.index("Rotation 1:")
    # One narrated mistake, Kion pointed at SES in another region: status shows it, then the fix.
    mistake_at = output.index("A mistake and its fix: Kion pointed at SES in another region")
    fixed_at = output.index("The fix: Kion's SMTP host back to")
    assert "✓ status names the mismatch, its cause and its fix (exit 1)" in output
    assert "✓ status is clean again" in output
    assert "✗ Kion's SMTP host" in output[mistake_at:fixed_at]
    assert "✗" not in output[:mistake_at] + output[fixed_at:]
    # Last, one rotation of an installation whose IAM user is in a second account.
    assert re.search(
        r"✓ Kion sends with \S+, made in account 210987654321 .*; no IAM user in the", output
    )
    assert "✓ 3 rotation(s), a rollback and a Kion API key renewal proven" in output
    # What the demo shortens to start fast, it says.
    assert (
        "Shortened for the demo: setSecret's 3 accepted logins span 0.5 s, not 2 s as deployed "
        "(SES_ACCEPT_MIN_SPAN_SECONDS)" in output
    )
    assert "Stopped every server the demo started." in output
    assert not SECRET_SHAPED.search(output + result.stderr)
    ports = {int(port) for port in PORT.findall(output)}
    assert len(ports) >= 3
    assert not any(listening(port) for port in ports)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_ctrl_c_stops_every_server_and_the_function():
    # SES never accepts the new key while the demo could still be running (its function gives
    # up on SES after 120 s): the interrupt always finds the rotation waiting.
    process = subprocess.Popen(
        [*demo_command(), "--propagation-delay", "3600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = lines_until(process, "Created access key")  # the rotation waits for SES now
    function_processes = children_of(process.pid)
    assert function_processes
    process.send_signal(signal.SIGINT)
    try:
        rest, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError("the demo did not stop within 30 s of Ctrl-C") from None
    output = "".join(lines) + rest

    assert process.returncode == 130, output
    assert "Interrupted." in output
    assert "Stopped every server the demo started." in output
    ports = {int(port) for port in PORT.findall(output)}
    assert ports
    assert not any(listening(port) for port in ports)
    deadline = time.monotonic() + 60  # a bound for a stuck process, not a measure of speed
    while any(Path(f"/proc/{pid}").exists() for pid in function_processes):
        assert time.monotonic() < deadline, "the function's process outlived the demo"
        time.sleep(0.1)


# The password Kion held: shown in full, in the form of an SES SMTP password (any other form is
# taken for a mask, which the demo could not put back).
ORIGINAL = derive_smtp_password("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1")


@pytest.fixture
def staging_kion(tmp_path):
    """A Kion reached by URL (here another stand-in, with its own CA), already sending mail."""
    certificates = LoopbackCertificates()
    with KionStandIn(certificates=certificates, mask_password=False) as kion:
        kion.app_config.update(smtp_username="AKIAORIGINALKEY00001", smtp_password=ORIGINAL)
        bundle = tmp_path / "kion-ca.pem"
        bundle.write_text(kion.ca_pem)
        yield kion, bundle


def test_kion_url_rotates_for_that_kion_and_puts_its_credential_back(staging_kion):
    kion, bundle = staging_kion

    result = run_demo(
        "--rotations",
        "1",
        "--kion-url",
        kion.url,
        "--kion-ca-bundle",
        str(bundle),
        env={"KION_API_KEY": kion.api_key},
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Kion API (yours)              {kion.url}" in result.stdout
    assert "✓ Kion's SMTP username is the new key" in result.stdout
    # The key it was given is never renewed nor deleted; the keys it made are gone at the end.
    given = [r for r in kion.api_keys.records.values() if r.key == kion.api_key]
    assert [r.id for r in given] == [1]
    assert list(kion.api_keys.records) == [1]
    posted = kion.requests_to("POST", "/api/v3/app-api-key")
    assert len(posted) == 2  # the demo's own key, and its renewal
    deleted = {r.path for r in kion.request_log if r.method == "DELETE"}
    assert "/api/v3/app-api-key/1" not in deleted
    assert "✓ Kion no longer has the old key 2" in result.stdout
    assert "Removed the Kion API key(s) the demo made: 3." in result.stdout
    patched = [request for request in kion.requests_to("PATCH") if request.status == 201]
    assert len(patched) >= 3  # the hand-made key, the rotation, and putting the original back
    assert kion.app_config["smtp_username"] == "AKIAORIGINALKEY00001"
    assert kion.app_config["smtp_password"] == ORIGINAL
    printed = [("stdout", result.stdout), ("stderr", result.stderr)]
    assert not find_leaks({kion.api_key: "Kion API key"}, printed)  # nor any 8 characters of it


def test_a_kion_that_refuses_the_key_fails_the_demo_cleanly(staging_kion):
    kion, bundle = staging_kion

    result = run_demo(
        "--kion-url",
        kion.url,
        "--kion-ca-bundle",
        str(bundle),
        env={"KION_API_KEY": "not-a-valid-key"},
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "rejected the App API key (401)" in result.stdout
    assert "Stopped every server the demo started." in result.stdout
    assert kion.app_config["smtp_username"] == "AKIAORIGINALKEY00001"


def test_kion_url_needs_the_api_key_in_the_environment():
    env = {name: value for name, value in os.environ.items() if name != "KION_API_KEY"}
    result = subprocess.run(
        demo_command("--kion-url", "https://kion.example.com"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )

    assert result.returncode == 2
    assert "KION_API_KEY" in result.stderr
