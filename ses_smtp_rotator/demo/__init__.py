"""The local demo: a Kion installation on loopback stand-ins, rotated for real (``make demo``)."""

from .environment import DemoEnvironment, DemoInstallation
from .kion_side import RemoteKion, StandInKion

__all__ = ["DemoEnvironment", "DemoInstallation", "RemoteKion", "StandInKion"]
