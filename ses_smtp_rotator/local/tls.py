"""Throwaway TLS certificates for the loopback servers, made with trustme."""

from __future__ import annotations

import ssl
from collections.abc import Sequence

import trustme

LOOPBACK_NAMES: tuple[str, ...] = ("127.0.0.1", "localhost")


class LoopbackCertificates:
    """A fresh CA and a server certificate it signed for ``hostnames`` (loopback by default).

    Clients trust the servers by passing :attr:`ca_pem` as their CA bundle. One instance can be
    shared by several servers, so that one bundle trusts them all.
    """

    def __init__(self, hostnames: Sequence[str] = LOOPBACK_NAMES) -> None:
        self.hostnames = tuple(hostnames)
        self._ca = trustme.CA()
        self._server_cert = self._ca.issue_cert(*self.hostnames)
        self.ca_pem: str = self._ca.cert_pem.bytes().decode("ascii")
        """The CA certificate in PEM form: what a client passes as its CA bundle."""
        self.server_context: ssl.SSLContext = self._make_server_context()
        """A server-side context presenting the certificate (and chain) for ``hostnames``."""

    def _make_server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._server_cert.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts this CA only (not the system store)."""
        return ssl.create_default_context(cadata=self.ca_pem)

    def untrusted(self) -> LoopbackCertificates:
        """Certificates for the same host names from a second, unrelated CA.

        A server using them presents a certificate that a client trusting :attr:`ca_pem` rejects:
        the "bad certificate" case.
        """
        return LoopbackCertificates(self.hostnames)
