"""Carts in Redis: one hash per user (product id -> quantity), expiring after a week
without use. Every call is bounded by the client's socket timeout, and Redis being down
is a fast 503 (carts live nowhere else)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.exceptions import RedisError

from kit import DependencyUnavailable
from kit.redis import RedisClient
from kit.redis_script import LuaScript


@asynccontextmanager
async def _redis_call() -> AsyncIterator[None]:
    try:
        yield
    except RedisError as exc:
        raise DependencyUnavailable("redis") from exc


# Each script is one command, one round trip and one reply, atomic in Redis; a MULTI
# pipeline of the same steps costs the client five commands' work. All return the
# cart's lines after the change as HGETALL's flat [field, value, ...] list.
_LINES = """
redis.call('EXPIRE', KEYS[1], ARGV[1])
return redis.call('HGETALL', KEYS[1])
"""
_SET = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return redis.call('HGETALL', KEYS[1])
"""
_REMOVE = """
redis.call('HDEL', KEYS[1], ARGV[1])
return redis.call('HGETALL', KEYS[1])
"""


class CartStore:
    def __init__(self, redis: RedisClient, *, ttl_seconds: int) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self._lines = LuaScript(redis, _LINES)
        self._set = LuaScript(redis, _SET)
        self._remove = LuaScript(redis, _REMOVE)

    @staticmethod
    def key(user_id: str) -> str:
        return f"cart:cart:{user_id}"

    async def lines(self, user_id: str) -> dict[str, int]:
        """The cart's lines; reading a cart renews its expiry."""
        async with _redis_call():
            flat = await self._lines(keys=[self.key(user_id)], args=[self.ttl_seconds])
        return _quantities(flat)

    async def set_quantity(self, user_id: str, product_id: str, quantity: int) -> dict[str, int]:
        """Sets one line; returns the cart's lines after it."""
        async with _redis_call():
            flat = await self._set(
                keys=[self.key(user_id)], args=[product_id, quantity, self.ttl_seconds]
            )
        return _quantities(flat)

    async def remove(self, user_id: str, product_id: str) -> dict[str, int]:
        """Removes one line; returns the cart's lines after it."""
        async with _redis_call():
            flat = await self._remove(keys=[self.key(user_id)], args=[product_id])
        return _quantities(flat)

    async def clear(self, user_id: str) -> None:
        async with _redis_call():
            await self.redis.delete(self.key(user_id))


def _quantities(flat: list[str]) -> dict[str, int]:
    return {str(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}
