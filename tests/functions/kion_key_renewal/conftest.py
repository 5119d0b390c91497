"""Fixtures of the Kion API key renewal tests: an installation whose key was stored as
set-kion-key stores it, and every exchange with the Kion stand-in held to Kion's OpenAPI
description."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from kion_key_world import KeyRenewalWorld, renewal_service
from kion_openapi import OpenApiCheck
from rotation_world import RotationWorld

from ses_smtp_rotator.local.kion_server import KionStandIn


@pytest.fixture(autouse=True)
def openapi(kion: KionStandIn) -> Iterator[OpenApiCheck]:
    """Every request the product sends to the stand-in, and every reply, checked against the
    description; a test may expect replies it does not document (fault switches)."""
    check = OpenApiCheck(secrets=lambda: kion.api_keys.values())
    kion.observers.append(check)
    yield check
    kion.observers.remove(check)
    assert not check.violations, check.violations


@pytest.fixture
def make_renewal(
    make_world: Callable[..., RotationWorld], kion: KionStandIn
) -> Callable[..., KeyRenewalWorld]:
    """``make_renewal(key_id_known=True)``: a steady installation whose Kion API key secret
    holds the stand-in's key, with its id unless ``key_id_known`` is False."""

    def make(*, key_id_known: bool = True, **options: object) -> KeyRenewalWorld:
        world = KeyRenewalWorld(make_world(adopt=False, **options), renewal_service())
        key_id, api_key = next(iter(kion.api_keys.items()))
        world.store_key(api_key, key_id if key_id_known else None)
        return world

    return make


@pytest.fixture
def renewal(make_renewal: Callable[..., KeyRenewalWorld]) -> KeyRenewalWorld:
    return make_renewal()
