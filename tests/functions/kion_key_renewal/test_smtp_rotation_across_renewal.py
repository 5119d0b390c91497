"""No SMTP rotation fails because of a renewal: a 401 with a cached key reads AWSCURRENT again
once, and retries with the key found there."""

from __future__ import annotations

import pytest
from kion_key_world import KeyRenewalWorld

from ses_smtp_rotator.functions.errors import KionAuthError
from ses_smtp_rotator.local.kion_server import KionStandIn
from ses_smtp_rotator.local.rotation_service import RotationStepError


@pytest.mark.usefixtures("warm_cache")
def test_an_smtp_rotation_started_before_a_renewal_finishes_on_the_renewed_key(
    renewal: KeyRenewalWorld, kion: KionStandIn
) -> None:
    smtp = renewal.smtp
    token = smtp.start()
    smtp.run_steps(token, ("createSecret", "setSecret"))  # the old key is now cached
    renewal.renew()  # ... and deleted in Kion
    kion.request_log.clear()
    smtp.run_steps(token, ("testSecret", "finishSecret"))
    assert smtp.converged()
    statuses = [r.status for r in kion.request_log]
    assert statuses.count(401) == 1  # one refusal, then the key read again works
    assert statuses[statuses.index(401) + 1] == 200


def test_a_key_that_is_bad_in_the_secret_too_fails_after_one_read(
    renewal: KeyRenewalWorld, kion: KionStandIn
) -> None:
    renewal.store_key("not-a-key-kion-knows", None)
    smtp = renewal.smtp
    token = smtp.start()
    smtp.step("createSecret", token)
    kion.request_log.clear()
    with pytest.raises(RotationStepError) as failure:
        smtp.step("setSecret", token)
    assert isinstance(failure.value.error, KionAuthError)
    assert [r.status for r in kion.request_log] == [401]
