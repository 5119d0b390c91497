"""The AWS regions that offer Amazon SES, in every partition, and the partitions themselves.

Synth validates each installation's region with botocore's endpoint data, and writes that data
into the functions' asset (``region_data.json``, ``write_region_data``). The functions judge
regions with what they ship united with the Lambda runtime's botocore, which can be older than
synth's: a region synth accepted is never refused by the function, and a region only a newer
runtime knows is accepted too. Without a shipped file (tests, the command line, code passed to
the construct) the running botocore alone decides.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import botocore.session

REGION_DATA = Path(__file__).with_name("region_data.json")


@dataclass(frozen=True)
class Partition:
    """One AWS partition as botocore describes it: its name, region pattern and DNS suffix."""

    name: str
    region_pattern: re.Pattern[str]
    dns_suffix: str


def botocore_region_data() -> list[dict[str, Any]]:
    """The running botocore's partitions, each with the regions that have an SES endpoint."""
    session = botocore.session.get_session()
    return [
        {
            "partition": entry["partition"],
            "regionRegex": entry["regionRegex"],
            "dnsSuffix": entry["dnsSuffix"],
            "sesRegions": sorted(
                session.get_available_regions("ses", partition_name=entry["partition"])
            ),
        }
        for entry in session.get_data("endpoints")["partitions"]
    ]


def write_region_data(directory: Path) -> Path:
    """Write the running botocore's region data into the functions' package ``directory``."""
    target = directory / REGION_DATA.name
    target.write_text(json.dumps({"partitions": botocore_region_data()}, indent=1) + "\n")
    return target


@lru_cache(maxsize=1)
def _region_data() -> tuple[dict[str, Any], ...]:
    """The shipped partitions (synth's), then those only the running botocore knows; each
    partition's SES regions from both."""
    shipped = json.loads(REGION_DATA.read_text())["partitions"] if REGION_DATA.exists() else []
    merged = {entry["partition"]: dict(entry) for entry in shipped}
    for entry in botocore_region_data():
        known = merged.setdefault(entry["partition"], dict(entry))
        known["sesRegions"] = sorted({*known["sesRegions"], *entry["sesRegions"]})
    return tuple(merged.values())


@lru_cache(maxsize=1)
def ses_regions() -> frozenset[str]:
    """Every region, in every partition (commercial, GovCloud, ...), that has an SES endpoint."""
    return frozenset(region for entry in _region_data() for region in entry["sesRegions"])


@lru_cache(maxsize=1)
def partitions() -> tuple[Partition, ...]:
    """Every partition known (aws, aws-cn, aws-us-gov, ...)."""
    return tuple(
        Partition(entry["partition"], re.compile(entry["regionRegex"]), entry["dnsSuffix"])
        for entry in _region_data()
    )


def partition_of(region: str) -> Partition | None:
    """The partition whose region names match ``region``, or None."""
    return next((p for p in partitions() if p.region_pattern.match(region)), None)


def default_smtp_host(region: str) -> str:
    """The public SES SMTP endpoint of ``region``, under its partition's DNS suffix."""
    partition = partition_of(region)
    return f"email-smtp.{region}.{partition.dns_suffix if partition else 'amazonaws.com'}"
