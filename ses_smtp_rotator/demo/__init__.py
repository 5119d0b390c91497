"""The local demo: a Kion installation on loopback stand-ins, rotated for real (``make demo``,
``python -m ses_smtp_rotator.demo``; needs the ``[local]`` extra).

Public names: ``DemoEnvironment`` (the stand-ins, started together), ``DemoInstallation`` (one
installation in it), ``StandInKion`` and ``RemoteKion`` (the Kion side: the stand-in, or a real
Kion given by URL).
"""

from .environment import DemoEnvironment, DemoInstallation
from .kion_side import RemoteKion, StandInKion

__all__ = ["DemoEnvironment", "DemoInstallation", "RemoteKion", "StandInKion"]
