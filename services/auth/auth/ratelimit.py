"""Login and sign-up limits in the shared Redis, so every auth instance counts the same
attempts: failed logins per account (guessing one password), all login attempts per
client address (spraying many accounts) and sign-ups per client address (flooding the
user table and the hashing capacity). Fixed windows: INCR, with the expiry set on the
first hit. Each window is one key, so it lives on one node of a Redis Cluster.

A login takes its account's failure slot *before* the password is verified and keeps it
when the password is wrong, so a burst of concurrent guesses cannot all be verified
between one read of the count and the next write: at most `login_failures_per_account`
guesses are ever checked per window."""

from __future__ import annotations

import hashlib
import logging

from redis.exceptions import RedisError

from auth.config import AuthSettings
from auth.errors import TooManyAttempts
from kit import DependencyUnavailable
from kit.redis import RedisClient
from kit.redis_script import LuaScript

log = logging.getLogger("auth.ratelimit")

# A script rather than a MULTI pipeline: one command and one round trip, and with a Redis
# Cluster it takes the path every command takes, which fetches the slot map again after
# a connection error. redis-py's cluster transactions refetch it only every
# `reinitialize_steps`-th error (never, as the kit sets it), so after a failover they
# would go on asking the dead primary.
# KEYS: the window's counter; ARGV: the window in seconds. Returns {count, ttl}.
COUNT = """
local count = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1], 'NX')
return {count, redis.call('TTL', KEYS[1])}
"""

# DECR on a key that expired in between would create it at -1 with no expiry: a free
# extra guess that never goes away. Only a live window is given a slot back.
GIVE_BACK = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    return redis.call('DECR', KEYS[1])
end
return 0
"""


class LoginLimiter:
    def __init__(self, redis: RedisClient, settings: AuthSettings) -> None:
        self.redis = redis
        self.settings = settings
        self._count_in_window = LuaScript(redis, COUNT)
        self._give_back = LuaScript(redis, GIVE_BACK)

    @staticmethod
    def _account_key(email: str) -> str:
        # Hashed, so Redis never holds a list of emails that were tried.
        return "auth:login:failures:" + hashlib.sha256(email.encode()).hexdigest()

    async def _count(self, key: str, window_seconds: int) -> tuple[int, int]:
        try:
            count, ttl = await self._count_in_window(keys=[key], args=[window_seconds])
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

    async def check_signup_address(self, address: str) -> None:
        limit = self.settings.signup_attempts_per_address
        count, ttl = await self._count(
            f"auth:signup:address:{address}", self.settings.signup_address_window_seconds
        )
        if count > limit:
            raise TooManyAttempts(
                f"More than {limit} sign-ups from your address; wait and retry.",
                retry_after_seconds=ttl,
            )

    async def take_failure_slot(self, email: str) -> None:
        """Counts this attempt as a failure until `clear` or `give_back` says otherwise;
        refused once the account's failures in this window reach the limit."""
        failures, ttl = await self._count(
            self._account_key(email), self.settings.login_failure_window_seconds
        )
        if failures > self.settings.login_failures_per_account:
            raise TooManyAttempts(
                "Too many failed logins for this account; wait and retry.",
                retry_after_seconds=ttl,
            )

    async def give_back(self, email: str) -> None:
        """For an attempt whose password was never checked (no hashing capacity, no
        database): it was not a guess, so it must not lock the account. Best effort:
        the caller is already answering with the error that stopped the check."""
        try:
            await self._give_back(keys=[self._account_key(email)])
        except RedisError as exc:
            log.warning("could not give a login slot back", extra={"error": repr(exc)})

    async def clear(self, email: str) -> None:
        try:
            await self.redis.delete(self._account_key(email))
        except RedisError as exc:
            raise DependencyUnavailable("redis") from exc
