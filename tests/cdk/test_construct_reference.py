"""The construct as a library documents itself: every keyword with its default, and every cdk.json
setting the stack passes through lands on a keyword the construct has."""

import inspect
import re

from ses_smtp_rotator.cdk import AppSettings, Installation, KionInstallation, SesSmtpRotation
from ses_smtp_rotator.cdk.context_settings import VpcPlacement, construct_props

KEYWORDS = [
    name
    for name, parameter in inspect.signature(SesSmtpRotation.__init__).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY
]


def documented(name: str) -> str:
    match = re.search(
        rf":param {name}: (.*?)(?=\n\s*:param |\Z)", SesSmtpRotation.__init__.__doc__ or "", re.S
    )
    assert match, f"SesSmtpRotation does not document {name}"
    return match.group(1)


def test_every_keyword_of_the_construct_is_documented_with_its_default() -> None:
    for name in KEYWORDS:
        if name != "installations":  # the one required keyword
            assert "Default:" in documented(name), f"{name} has no documented default"


def test_every_setting_the_stack_passes_through_is_a_keyword_of_the_construct() -> None:
    settings = AppSettings(
        installations=(
            Installation(name="prod", kion_url="https://kion.example.com", ses_region="us-east-1"),
        ),
        vpc=VpcPlacement(vpc_id="vpc-0abc", subnet_ids=("subnet-0abc",)),
    )
    passed = construct_props(settings) | construct_props(settings.vpc)
    assert set(passed) - set(KEYWORDS) == set()
    assert passed["timeout"] is settings.function_timeout


def test_installation_is_the_kion_installation_the_readme_shows() -> None:
    assert Installation is KionInstallation
