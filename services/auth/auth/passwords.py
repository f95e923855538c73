"""argon2id password hashing with a cap on how many hashes run at once: each takes
~19 MiB and a core for tens of milliseconds, so a login flood must queue (briefly) and
then be refused, never exhaust the instance."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from auth.config import AuthSettings
from kit import DependencyUnavailable


class Passwords:
    def __init__(self, settings: AuthSettings) -> None:
        self.hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        self.slots = asyncio.Semaphore(settings.max_concurrent_hashes)
        self.queue_timeout = settings.hash_queue_timeout_seconds
        # Verified against when the email is unknown, so both failures cost the same.
        self.decoy_hash = self.hasher.hash("not-a-real-password-only-for-equal-timing")

    async def _run(self, work: object, *args: str) -> object:
        try:
            async with asyncio.timeout(self.queue_timeout):
                await self.slots.acquire()
        except TimeoutError as exc:
            raise DependencyUnavailable("password hashing capacity", retry_after_seconds=1) from exc
        try:
            return await asyncio.to_thread(work, *args)  # type: ignore[arg-type]
        finally:
            self.slots.release()

    async def hash(self, password: str) -> str:
        return str(await self._run(self.hasher.hash, password))

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        def check(candidate: str, given: str) -> bool:
            try:
                return bool(self.hasher.verify(candidate, given))
            except (VerificationError, InvalidHashError):
                return False

        matched = await self._run(check, stored_hash or self.decoy_hash, password)
        return bool(matched) and stored_hash is not None
