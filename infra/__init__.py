"""CDK constructs and the stack that deploy the SES SMTP credential rotation for Kion.

Reuse the construct in another CDK app with ``from infra import SesSmtpRotation, KionInstallation``.
"""

from .installation import KionInstallation, RotationSchedule
from .powertools import POWERTOOLS_LAYER_VERSION, layer_arn_for_region
from .rotation import (
    InstallationResources,
    SesSmtpRotation,
)
from .settings import AppSettings, SettingsError, VpcPlacement, load_settings
from .stack import SesSmtpRotatorStack

__all__ = [
    "POWERTOOLS_LAYER_VERSION",
    "AppSettings",
    "InstallationResources",
    "KionInstallation",
    "RotationSchedule",
    "SesSmtpRotation",
    "SesSmtpRotatorStack",
    "SettingsError",
    "VpcPlacement",
    "layer_arn_for_region",
    "load_settings",
]
