"""Carts in Redis: one hash per user (product id -> quantity), expiring after a week
without use. Every call is bounded by the client's socket timeout, and Redis being down
is a fast 503 (carts live nowhere else)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.exceptions import RedisError

from kit import DependencyUnavailable


@asynccontextmanager
async def _redis_call() -> AsyncIterator[None]:
    try:
        yield
    except RedisError as exc:
        raise DependencyUnavailable("redis") from exc


class CartStore:
    def __init__(self, redis: Redis, *, ttl_seconds: int) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds

    @staticmethod
    def _key(user_id: str) -> str:
        return f"cart:cart:{user_id}"

    async def lines(self, user_id: str) -> dict[str, int]:
        # One round trip: the read and the renewed expiry (a no-op on a missing cart).
        async with _redis_call(), self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._key(user_id))
            pipe.expire(self._key(user_id), self.ttl_seconds)
            raw, _ = await pipe.execute()
        return _quantities(raw)

    async def set_quantity(self, user_id: str, product_id: str, quantity: int) -> dict[str, int]:
        """Sets one line; returns the cart's lines after it, read in the same round trip."""
        async with _redis_call(), self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._key(user_id), product_id, quantity)
            pipe.expire(self._key(user_id), self.ttl_seconds)
            pipe.hgetall(self._key(user_id))
            _, _, raw = await pipe.execute()
        return _quantities(raw)

    async def remove(self, user_id: str, product_id: str) -> dict[str, int]:
        """Removes one line; returns the cart's lines after it, read in the same round trip."""
        async with _redis_call(), self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self._key(user_id), product_id)
            pipe.hgetall(self._key(user_id))
            _, raw = await pipe.execute()
        return _quantities(raw)

    async def clear(self, user_id: str) -> None:
        async with _redis_call():
            await self.redis.delete(self._key(user_id))


def _quantities(raw: dict[str, str]) -> dict[str, int]:
    return {str(product_id): int(quantity) for product_id, quantity in raw.items()}
