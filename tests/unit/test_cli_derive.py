"""``ses-smtp-rotator derive``, run as a user runs it."""

import subprocess
import sys

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def derive(*args, stdin=""):
    return subprocess.run(
        [sys.executable, "-m", "ses_smtp_rotator.cli", "derive", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_prints_the_password_for_a_piped_key_and_never_the_key():
    result = derive("--region", "us-east-1", stdin=SECRET + "\n")
    assert result.returncode == 0
    assert result.stdout.strip() == "BLBM/9hSUELfq8Gw+rU1YcBjkOxGbhT2XG763xVLGWL9"
    assert SECRET not in result.stdout + result.stderr


def test_knows_govcloud():
    result = derive("--region", "us-gov-west-1", stdin=SECRET)
    assert result.returncode == 0
    assert result.stdout.strip() != "BLBM/9hSUELfq8Gw+rU1YcBjkOxGbhT2XG763xVLGWL9"


def test_a_bad_region_is_a_clear_error():
    result = derive("--region", "us-east-9", stdin=SECRET)
    assert result.returncode == 2
    assert "not a region with Amazon SES" in result.stderr
    assert result.stdout == ""


def test_an_empty_key_is_an_error():
    result = derive("--region", "us-east-1", stdin="\n")
    assert result.returncode == 2
    assert "no secret access key" in result.stderr


def test_region_is_required():
    result = derive(stdin=SECRET)
    assert result.returncode == 2
    assert "--region" in result.stderr
