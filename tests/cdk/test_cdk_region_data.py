"""Regions from one source: the functions' asset ships the region data synth validated with, so a
Lambda runtime whose botocore is older than synth's still accepts every region synth accepted."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from ses_smtp_rotator.cdk.function import FUNCTIONS_PACKAGE, PACKAGE_DIR, asset_dir
from ses_smtp_rotator.functions import regions
from ses_smtp_rotator.functions.errors import InvalidSecretError
from ses_smtp_rotator.functions.installation_secret import InstallationSecret
from ses_smtp_rotator.functions.services.ses_hosts import ses_smtp_host

Session = botocore.session.Session


def shipped_data() -> Path:
    return asset_dir() / PACKAGE_DIR.name / FUNCTIONS_PACKAGE / regions.REGION_DATA.name


def installation_in(region: str) -> str:
    return json.dumps(
        {
            "username": "",
            "password": "",
            "ses_region": region,
            "iam_user_name": "kion-ses-smtp",
            "kion_url": "https://kion.example.com",
            "kion_api_key_secret_id": "kion/kion-api-key",
        }
    )


@pytest.fixture
def function_judging(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], None]]:
    """``function_judging(data)``: the functions read their region data from ``data`` (a file
    that may not exist), on whatever botocore the test leaves them."""

    def clear() -> None:
        for cached in (regions._region_data, regions.ses_regions, regions.partitions):
            cached.cache_clear()

    def judge(data: Path) -> None:
        monkeypatch.setattr(regions, "REGION_DATA", data)
        clear()

    yield judge
    monkeypatch.undo()
    clear()


def runtime_botocore_without(
    monkeypatch: pytest.MonkeyPatch, *, partition: str | None = None, region: str | None = None
) -> None:
    """The runtime's botocore predates ``partition`` (or SES in ``region``)."""
    get_data, get_partitions = Session.get_data, Session.get_available_partitions
    get_regions = Session.get_available_regions

    def data(self: Session, name: str) -> Any:
        loaded = get_data(self, name)
        if name != "endpoints":
            return loaded
        return {
            **loaded,
            "partitions": [p for p in loaded["partitions"] if p["partition"] != partition],
        }

    def available_partitions(self: Session) -> list[str]:
        return [name for name in get_partitions(self) if name != partition]

    def available_regions(
        self: Session, service: str, partition_name: str = "aws", **options: Any
    ) -> list[str]:
        if partition_name == partition:
            return []
        return [r for r in get_regions(self, service, partition_name, **options) if r != region]

    monkeypatch.setattr(Session, "get_data", data)
    monkeypatch.setattr(Session, "get_available_partitions", available_partitions)
    monkeypatch.setattr(Session, "get_available_regions", available_regions)


def test_the_asset_ships_the_regions_synth_validated_with() -> None:
    shipped = json.loads(shipped_data().read_text())["partitions"]
    assert {r for p in shipped for r in p["sesRegions"]} == regions.ses_regions()
    assert {p["partition"] for p in shipped} == {p.name for p in regions.partitions()}


def test_a_runtime_without_a_partition_synth_knew_still_accepts_its_regions(
    function_judging: Callable[[Path], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "eusc-de-east-1" in regions.ses_regions()  # synth accepts it
    shipped = shipped_data()
    runtime_botocore_without(monkeypatch, partition="aws-eusc")
    function_judging(shipped)
    secret = InstallationSecret.parse(installation_in("eusc-de-east-1"))
    assert secret.smtp_host == "email-smtp.eusc-de-east-1.amazonaws.eu"
    host = ses_smtp_host(secret.smtp_host)
    assert host is not None
    assert (host.region, host.partition) == ("eusc-de-east-1", "aws-eusc")


def test_without_the_shipped_data_that_runtime_would_refuse_the_region(
    function_judging: Callable[[Path], None], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runtime_botocore_without(monkeypatch, partition="aws-eusc")
    function_judging(tmp_path / "absent.json")
    with pytest.raises(InvalidSecretError, match="eusc-de-east-1"):
        InstallationSecret.parse(installation_in("eusc-de-east-1"))


def test_a_runtime_without_ses_in_a_region_synth_knew_still_accepts_it(
    function_judging: Callable[[Path], None], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    shipped = shipped_data()
    runtime_botocore_without(monkeypatch, region="ap-southeast-5")
    function_judging(tmp_path / "absent.json")
    assert "ap-southeast-5" not in regions.ses_regions()  # the old runtime alone
    function_judging(shipped)
    assert (
        InstallationSecret.parse(installation_in("ap-southeast-5")).ses_region == "ap-southeast-5"
    )


def test_a_region_only_the_runtime_knows_is_accepted_too(
    function_judging: Callable[[Path], None], tmp_path: Path
) -> None:
    stale = tmp_path / regions.REGION_DATA.name
    partitions = json.loads(shipped_data().read_text())["partitions"]
    for partition in partitions:
        partition["sesRegions"] = [r for r in partition["sesRegions"] if r != "mx-central-1"]
    stale.write_text(json.dumps({"partitions": partitions}))
    function_judging(stale)
    assert "mx-central-1" in regions.ses_regions()
