"""The AWS regions that offer Amazon SES, in every partition, from botocore's endpoint data."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import botocore.session


@dataclass(frozen=True)
class Partition:
    """One AWS partition as botocore describes it: its name, region pattern and DNS suffix."""

    name: str
    region_pattern: re.Pattern[str]
    dns_suffix: str


@lru_cache(maxsize=1)
def ses_regions() -> frozenset[str]:
    """Every region, in every partition (commercial, GovCloud, ...), that has an SES endpoint."""
    session = botocore.session.get_session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("ses", partition_name=partition)
    )


@lru_cache(maxsize=1)
def partitions() -> tuple[Partition, ...]:
    """Every partition botocore knows (aws, aws-cn, aws-us-gov, ...)."""
    endpoint_data = botocore.session.get_session().get_data("endpoints")
    return tuple(
        Partition(entry["partition"], re.compile(entry["regionRegex"]), entry["dnsSuffix"])
        for entry in endpoint_data["partitions"]
    )


def partition_of(region: str) -> Partition | None:
    """The partition whose region names match ``region``, or None."""
    return next((p for p in partitions() if p.region_pattern.match(region)), None)


def default_smtp_host(region: str) -> str:
    """The public SES SMTP endpoint of ``region``, under its partition's DNS suffix."""
    partition = partition_of(region)
    return f"email-smtp.{region}.{partition.dns_suffix if partition else 'amazonaws.com'}"
