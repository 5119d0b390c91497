"""Where Kion sends: which SES region an SMTP host name belongs to, and whether a credential made
for the installation's region works there.

SES SMTP passwords are bound to a region, so a credential proven in ``ses_region`` works at Kion's
host only when that host is an SES SMTP endpoint of the same region, or a relay the installation
names as its own ``smtp_host`` (the host the rotation proves the credential at).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ses_smtp_rotator.functions.errors import KionEndpointError
from ses_smtp_rotator.functions.installation_secret import InstallationSecret
from ses_smtp_rotator.functions.regions import (
    Partition,
    default_smtp_host,
    partition_of,
    partitions,
)
from ses_smtp_rotator.functions.services.kion_settings import KionSmtpSettings

PUBLIC, FIPS, VPC_ENDPOINT = "public", "FIPS", "VPC endpoint"

# Kinds of configuration mismatch, each refused with its own message (and counted by the tests).
KION_SMTP_DISABLED = "kion-smtp-disabled"
KION_HOST_MISSING = "kion-host-missing"
KION_HOST_OTHER_REGION = "kion-host-other-region"
KION_HOST_OTHER_PARTITION = "kion-host-other-partition"
KION_HOST_UNDECLARED = "kion-host-undeclared"
PROOF_HOST_OTHER_REGION = "proof-host-other-region"
KION_SENDER_MISSING = "kion-sender-missing"
MISMATCH_KINDS = (
    KION_SMTP_DISABLED,
    KION_HOST_MISSING,
    KION_HOST_OTHER_REGION,
    KION_HOST_OTHER_PARTITION,
    KION_HOST_UNDECLARED,
    PROOF_HOST_OTHER_REGION,
    KION_SENDER_MISSING,
)
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


@dataclass(frozen=True)
class SesSmtpHost:
    """An SES SMTP host name and what it says: region, partition and kind of endpoint."""

    host: str
    region: str
    partition: str
    kind: str  # PUBLIC, FIPS or VPC_ENDPOINT

    def __str__(self) -> str:
        kind = "" if self.kind == PUBLIC else f" {self.kind}"
        return f"{self.host} (SES{kind} in {self.region})"


def ses_smtp_host(host: str) -> SesSmtpHost | None:
    """The SES SMTP endpoint ``host`` names, or None when it is not an SES SMTP host name.

    Knows the public names (``email-smtp.<region>.<suffix>``), the FIPS names
    (``email-smtp-fips.<region>.<suffix>``) and interface VPC endpoint names
    (``vpce-<id>.email-smtp.<region>.vpce.<suffix>``), for every partition's DNS suffix.
    """
    name = host.strip().rstrip(".").lower()
    for partition in partitions():
        match = _host_pattern(partition).match(name)
        if match and partition.region_pattern.match(match["region"]):
            kind = VPC_ENDPOINT if match["vpce"] else FIPS if match["fips"] else PUBLIC
            return SesSmtpHost(name, match["region"], partition.name, kind)
    return None


@lru_cache(maxsize=16)
def _host_pattern(partition: Partition) -> re.Pattern[str]:
    suffix = re.escape(partition.dns_suffix)
    return re.compile(
        rf"^(?:(?P<vpce>vpce-[a-z0-9-]+)\.)?email-smtp(?P<fips>-fips)?\."
        rf"(?P<region>[a-z0-9-]+)\.(?(vpce)vpce\.){suffix}$"
    )


@dataclass(frozen=True)
class EndpointVerdict:
    """Whether the credential this installation makes works where Kion sends."""

    ok: bool
    summary: str
    fix: str = ""
    kind: str | None = None  # one of MISMATCH_KINDS when not ok

    def require(self) -> None:
        """Raise KionEndpointError when the verdict is a mismatch."""
        if not self.ok:
            raise KionEndpointError(self.summary, self.fix, self.kind or "")


def _set_region(region: str) -> str:
    """How to move an installation to ``region``: in cdk.json when the stack manages it (the
    stack writes the secret's settings from there on every deploy), else in the secret."""
    return (
        f"move the installation to {region}: for an installation the stack manages, set its "
        f"sesRegion to {region} in cdk.json and deploy (a hand edit of the secret is undone by "
        f"the next deploy); otherwise set the secret's ses_region to {region}"
    )


def kion_endpoint_verdict(kion: KionSmtpSettings, secret: InstallationSecret) -> EndpointVerdict:
    """Compare Kion's SMTP host (and sender) with the installation's ``ses_region``."""
    region = secret.ses_region
    proof_host = ses_smtp_host(secret.smtp_host)
    if proof_host is not None and proof_host.region != region:
        return EndpointVerdict(
            False,
            f"The secret's smtp_host {proof_host} is not in its ses_region {region}.",
            f"Set smtp_host to an SES SMTP endpoint of {region} (or remove it for "
            f"{default_smtp_host(region)}), or {_set_region(proof_host.region)}.",
            PROOF_HOST_OTHER_REGION,
        )
    if kion.enabled is False:
        return EndpointVerdict(
            False,
            "Kion's SMTP sending is switched off (smtp_enabled is false), so no credential can "
            "be proven where Kion sends.",
            "Switch SMTP on in Kion's settings (Email and Notifications) and rotate again, or "
            "pause this installation's rotation schedule while Kion sends no mail.",
            KION_SMTP_DISABLED,
        )
    if not kion.host:
        return EndpointVerdict(
            False,
            "Kion's SMTP settings name no smtp_host, so where Kion sends is unknown.",
            f"Set Kion's SMTP host to the SES SMTP endpoint of {region} "
            f"({default_smtp_host(region)}) and rotate again.",
            KION_HOST_MISSING,
        )
    where = f"Kion sends through {kion.host}:{kion.port or '?'}"
    kion_host = ses_smtp_host(kion.host)
    if kion_host is None and kion.host.lower() != secret.smtp_host.lower():
        return EndpointVerdict(
            False,
            f"{where}, which is neither an SES SMTP endpoint nor the installation's smtp_host "
            f"({secret.smtp_host}); a credential proven in {region} may not work there.",
            f"Point Kion at the SES SMTP endpoint of {region} ({default_smtp_host(region)}), or, "
            f"if {kion.host} is a relay to SES {region}, set the secret's smtp_host to "
            f"{kion.host}.",
            KION_HOST_UNDECLARED,
        )
    if kion_host is not None and kion_host.region != region:
        home = partition_of(region)
        other_partition = home is not None and kion_host.partition != home.name
        return EndpointVerdict(
            False,
            f"{where}, {kion_host}, but the installation's ses_region is {region}: SES SMTP "
            f"passwords are bound to a region, so a credential made for {region} would not work "
            f"at {kion_host.host}"
            + (f" (another partition, {kion_host.partition})." if other_partition else "."),
            f"Either {_set_region(kion_host.region)} (and its smtp_host to an SES endpoint of "
            f"{kion_host.region}, or none for {default_smtp_host(kion_host.region)}), or point "
            f"Kion's SMTP host at {default_smtp_host(region)}; then rotate again. Kion was left "
            "unchanged.",
            KION_HOST_OTHER_PARTITION if other_partition else KION_HOST_OTHER_REGION,
        )
    if secret.send_path_check and not (kion.from_address and _ADDRESS.match(kion.from_address)):
        return EndpointVerdict(
            False,
            f"Kion's SMTP 'from' address is {kion.from_address or 'empty'}, so the send-path "
            "check has no sender to prove.",
            "Set Kion's SMTP from address to an address of a verified SES identity, or set "
            "send_path_check to false in the installation's settings.",
            KION_SENDER_MISSING,
        )
    described = str(kion_host) if kion_host else "the installation's own smtp_host"
    return EndpointVerdict(True, f"{where}, {described}, which matches ses_region {region}")
