"""The Kion the demo rotates for: the loopback stand-in, or a real Kion given by ``--kion-url``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ses_smtp_rotator.functions.services.kion_settings import KionClient

from ..local.kion_server import KionStandIn


class KionSide(Protocol):
    """What the demo needs from Kion: where it is, how to reach it, and its SMTP credential."""

    url: str
    api_key: str
    ca_pem: str | None

    def smtp_credential(self) -> tuple[str, str | None]:
        """Kion's SMTP username and password (None when Kion hides the password)."""
        ...

    def set_smtp_credential(self, username: str, password: str) -> None:
        """What an administrator does in Kion's settings page."""
        ...

    def restore(self) -> str | None:
        """Undo the demo's changes; a note for the user when that is not possible."""
        ...


@dataclass
class StandInKion:
    """The loopback Kion stand-in."""

    server: KionStandIn

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def api_key(self) -> str:
        return self.server.api_key

    @property
    def ca_pem(self) -> str | None:
        return self.server.ca_pem

    def smtp_credential(self) -> tuple[str, str | None]:
        config = self.server.app_config
        return str(config.get("smtp_username") or ""), config.get("smtp_password")

    def set_smtp_credential(self, username: str, password: str) -> None:
        self.server.app_config.update(smtp_username=username, smtp_password=password)

    def restore(self) -> str | None:
        return None


@dataclass
class RemoteKion:
    """A real Kion (a staging installation, or a proxy in front of one), reached over HTTPS with
    an App API key. The demo changes its SMTP username and password only, and puts the original
    ones back at the end when Kion shows the password."""

    url: str
    api_key: str = field(repr=False)
    ca_pem: str | None = field(default=None, repr=False)
    _original: tuple[str, str | None] | None = field(default=None, repr=False)

    def client(self) -> KionClient:
        return KionClient(
            self.url,
            self.api_key,
            api_key_secret_id="the demo's Kion API key",  # noqa: S106 (a name)
            ca_pem=self.ca_pem,
            retries=2,
        )

    def smtp_credential(self) -> tuple[str, str | None]:
        settings = self.client().smtp_settings()
        return settings.username, settings.password

    def set_smtp_credential(self, username: str, password: str) -> None:
        if self._original is None:
            self._original = self.smtp_credential()
        self.client().set_smtp_credential(username, password)

    def restore(self) -> str | None:
        if self._original is None:
            return None
        username, password = self._original
        if password is None:
            return (
                f"Kion at {self.url} hides its SMTP password, so the demo could not put the "
                f"original credential back: set the SMTP username ({username or 'empty'}) and "
                "password again in Kion's settings."
            )
        self.client().set_smtp_credential(username, password)
        self._original = None
        return f"Put Kion's original SMTP username ({username or 'empty'}) and password back."
