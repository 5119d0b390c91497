"""The watch over an installation whose IAM user is in another account: it checks the keys and
deletes retired ones there, through the access role, and says so when the role refuses."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from cross_account_world import (
    ACCESS_ROLE,
    DEPLOYMENT_ACCOUNT,
    SES_ACCOUNT,
    Accounts,
    function_role_arn,
    two_accounts,
)
from watch_world import WatchedWorld

from ses_smtp_rotator.functions.services import account_access


@pytest.fixture
def accounts(aws, monkeypatch, smtp) -> Iterator[Accounts]:
    with two_accounts(monkeypatch, smtp) as accounts:
        yield accounts


@pytest.fixture
def cross_watched(
    accounts: Accounts, make_watched: Callable[..., WatchedWorld]
) -> Iterator[WatchedWorld]:
    watched = make_watched(iam=accounts.ses_iam)
    watched.smtp.iam = accounts.ses_iam
    watched.smtp.edit_current(ses_account=SES_ACCOUNT)
    yield watched
    watched.hook.wait_idle(timeout=30)
    watched.hook.uninstall()


def test_the_watch_checks_the_key_in_the_installations_account(cross_watched, accounts):
    [health] = cross_watched.watch().run(now=cross_watched.kion_now()).checked

    assert health.checks["access_key"].ok, health.checks["access_key"].summary
    assert accounts.access_keys_in(DEPLOYMENT_ACCOUNT) == set()


def test_the_watch_deletes_a_retired_key_there_once_its_window_passed(cross_watched, accounts):
    replaced = cross_watched.smtp.current()["username"]
    cross_watched.smtp.rotate()
    new_key = cross_watched.smtp.current()["username"]
    cross_watched.smtp.backdate_retirements()

    [health] = cross_watched.watch().run(now=cross_watched.kion_now()).checked

    assert health.retired_keys_deleted == [replaced]
    assert accounts.access_keys_in(SES_ACCOUNT) == {new_key}
    assert accounts.access_keys_in(DEPLOYMENT_ACCOUNT) == set()


def test_a_refused_access_role_is_reported_with_the_fix_and_nothing_is_deleted(
    cross_watched, accounts
):
    cross_watched.smtp.rotate()
    cross_watched.smtp.backdate_retirements()
    keys_before = accounts.access_keys_in(SES_ACCOUNT)
    accounts.set_trust(function_role_arn("someone-else"))
    account_access.new_invocation()  # the watch's own invocation, as its handler starts one

    [health] = cross_watched.watch().run(now=cross_watched.kion_now()).checked

    finding = health.checks["access_key"]
    assert finding.ok is None
    assert ACCESS_ROLE in finding.summary
    assert "-Access" in finding.fix
    assert health.retired_keys_deleted == []
    assert accounts.access_keys_in(SES_ACCOUNT) == keys_before
