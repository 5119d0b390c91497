"""CDK constructs and the stack that deploy the SES SMTP credential rotation for Kion.

Reuse the construct in another CDK app with ``from infra import SesSmtpRotation, KionInstallation``.
"""

from .context_settings import AppSettings, SettingsError, VpcPlacement, load_settings
from .deployment import Deployment
from .installation import KionInstallation, RotationSchedule
from .powertools import POWERTOOLS_RELEASE
from .rotation import (
    InstallationResources,
    SesSmtpRotation,
)
from .stack import SesSmtpRotatorStack

__all__ = [
    "POWERTOOLS_RELEASE",
    "AppSettings",
    "Deployment",
    "InstallationResources",
    "KionInstallation",
    "RotationSchedule",
    "SesSmtpRotation",
    "SesSmtpRotatorStack",
    "SettingsError",
    "VpcPlacement",
    "load_settings",
]
