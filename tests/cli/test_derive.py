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
    assert "no secret access key was given" in result.stderr


def test_region_is_required():
    result = derive(stdin=SECRET)
    assert result.returncode == 2
    assert "--region" in result.stderr


def refused(text: str) -> subprocess.CompletedProcess[str]:
    result = derive("--region", "us-east-1", stdin=text + "\n")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Expected the secret access key: 40 characters" in result.stderr
    return result


def test_an_access_key_id_is_named_as_such_and_not_echoed():
    key_id = "AKIAIOSFODNN7EXAMPLE"
    result = refused(key_id)
    assert "that is an access key id, the SMTP user name" in result.stderr
    assert key_id not in result.stderr


def test_a_temporary_access_key_id_is_named_as_such():
    key_id = "ASIAIOSFODNN7EXAMPLE"
    result = refused(key_id)
    assert "a temporary access key id (ASIA...)" in result.stderr
    assert key_id not in result.stderr


def test_a_short_value_is_refused_by_its_length_without_echoing_it():
    result = refused("abcde")
    assert "has 5 characters, not 40" in result.stderr
    assert "abcde" not in result.stderr


def test_forty_characters_outside_the_alphabet_are_refused():
    almost = SECRET[:-1] + "!"
    result = refused(almost)
    assert "characters a secret access key never has" in result.stderr
    assert almost not in result.stderr
    assert SECRET[:-1] not in result.stderr


def test_an_empty_key_says_what_was_expected():
    result = refused("")
    assert "no secret access key was given" in result.stderr
