import asyncio

import pytest

from auth.config import AuthSettings
from auth.passwords import Passwords
from kit import DependencyUnavailable

pytestmark = pytest.mark.unit


def passwords(**overrides: object) -> Passwords:
    settings = AuthSettings(argon2_memory_kib=8192, argon2_time_cost=1, **overrides)  # type: ignore[arg-type]
    return Passwords(settings)


async def test_hashes_verify_and_unknown_accounts_never_match() -> None:
    hasher = passwords()
    stored = await hasher.hash("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert await hasher.verify(stored, "correct horse battery")
    assert not await hasher.verify(stored, "wrong horse battery")
    # The decoy hash is checked for an unknown email, and never counts as a match.
    assert not await hasher.verify(None, "not-a-real-password-only-for-equal-timing")


async def test_a_flood_beyond_the_cap_is_refused_not_queued_forever() -> None:
    hasher = passwords(max_concurrent_hashes=1, hash_queue_timeout_seconds=0.05)
    await hasher.slots.acquire()  # the one slot is busy
    try:
        with pytest.raises(DependencyUnavailable) as refused:
            await hasher.hash("correct horse battery")
        assert refused.value.status == 503
    finally:
        hasher.slots.release()
    results = await asyncio.gather(
        *(hasher.hash(f"password-{n}-xx") for n in range(3)), return_exceptions=True
    )
    assert any(isinstance(r, str) for r in results)
