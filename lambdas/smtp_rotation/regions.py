"""The AWS regions that offer Amazon SES, in every partition, from botocore's endpoint data."""

from __future__ import annotations

from functools import lru_cache

import botocore.session


@lru_cache(maxsize=1)
def ses_regions() -> frozenset[str]:
    """Every region, in every partition (commercial, GovCloud, ...), that has an SES endpoint."""
    session = botocore.session.get_session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("ses", partition_name=partition)
    )


def default_smtp_host(region: str) -> str:
    """The public SES SMTP endpoint of ``region``."""
    return f"email-smtp.{region}.amazonaws.com"
