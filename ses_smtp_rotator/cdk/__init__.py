"""The AWS CDK construct that deploys the SES SMTP credential rotation for Kion installations.

Install with ``pip install "ses-smtp-rotator[cdk]"`` and use it in any CDK app::

    from ses_smtp_rotator.cdk import Installation, SesSmtpRotation

    SesSmtpRotation(stack, "Rotation", installations=[
        Installation(name="prod", kion_url="https://kion.example.com", ses_region="us-east-1"),
    ])

The Lambda code ships inside this package (``ses_smtp_rotator/functions``); the construct stages it
as the functions' asset, with no build step and no Docker.

Public names:

- ``SesSmtpRotation``: the construct; every setting besides the installations is a keyword
  argument with a default.
- ``Installation`` (also ``KionInstallation``): one Kion installation, checked when created.
- ``RotationSchedule``: when the rotations run.
- ``SesSmtpAccessStack`` (and its construct ``SesSmtpAccess``): the role and SMTP users an SES
  account in another account than the stack's needs, to deploy in that account.
- ``InstallationResources``: what the construct made for one installation.
- ``Deployment``: the names, tag and IAM path of one deployment's resources.
- ``SesSmtpRotatorStack``, ``AppSettings``, ``VpcPlacement``, ``load_settings``,
  ``SettingsError``: the repository's app (``app.py``), configured from cdk.json.
- ``POWERTOOLS_RELEASE``: the Powertools for AWS Lambda release whose layer the functions use.
"""

from .access import SesSmtpAccess, SesSmtpAccessStack
from .context_settings import AppSettings, SettingsError, VpcPlacement, load_settings
from .deployment import Deployment
from .installation import KionInstallation, RotationSchedule
from .powertools import POWERTOOLS_RELEASE
from .rotation import (
    InstallationResources,
    SesSmtpRotation,
)
from .stack import SesSmtpRotatorStack

Installation = KionInstallation

__all__ = [
    "POWERTOOLS_RELEASE",
    "AppSettings",
    "Deployment",
    "Installation",
    "InstallationResources",
    "KionInstallation",
    "RotationSchedule",
    "SesSmtpAccess",
    "SesSmtpAccessStack",
    "SesSmtpRotation",
    "SesSmtpRotatorStack",
    "SettingsError",
    "VpcPlacement",
    "load_settings",
]
