"""Login limits in the shared Redis, so every auth instance counts the same attempts:
failed logins per account (guessing one password) and all attempts per client address
(spraying many accounts). Fixed windows: INCR, with the expiry set on the first hit."""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis
from redis.exceptions import RedisError

from auth.config import AuthSettings
from auth.errors import TooManyAttempts
from kit import DependencyUnavailable


class LoginLimiter:
    def __init__(self, redis: Redis, settings: AuthSettings) -> None:
        self.redis = redis
        self.settings = settings

    @staticmethod
    def _account_key(email: str) -> str:
        # Hashed, so Redis never holds a list of emails that were tried.
        return "auth:login:failures:" + hashlib.sha256(email.encode()).hexdigest()

    async def _count(self, key: str, window_seconds: int) -> tuple[int, int]:
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, window_seconds, nx=True)
                pipe.ttl(key)
                count, _, ttl = await pipe.execute()
        except RedisError as exc:
            raise DependencyUnavailable("redis") from exc
        return int(count), int(ttl)

    async def check_address(self, address: str) -> None:
        limit = self.settings.login_attempts_per_address
        count, ttl = await self._count(
            f"auth:login:address:{address}", self.settings.login_address_window_seconds
        )
        if count > limit:
            raise TooManyAttempts(
                f"More than {limit} login attempts from your address; wait and retry.",
                retry_after_seconds=ttl,
            )

    async def check_account(self, email: str) -> None:
        key = self._account_key(email)
        try:
            failures, ttl = await self.redis.get(key), await self.redis.ttl(key)
        except RedisError as exc:
            raise DependencyUnavailable("redis") from exc
        if failures is not None and int(failures) >= self.settings.login_failures_per_account:
            raise TooManyAttempts(
                "Too many failed logins for this account; wait and retry.",
                retry_after_seconds=int(ttl),
            )

    async def record_failure(self, email: str) -> None:
        await self._count(self._account_key(email), self.settings.login_failure_window_seconds)

    async def clear(self, email: str) -> None:
        try:
            await self.redis.delete(self._account_key(email))
        except RedisError as exc:
            raise DependencyUnavailable("redis") from exc
