"""Cache-aside for single products in the shared Redis: read the cache, fall back to
Postgres and fill the cache with a TTL; evict on every change of price or stock. Redis
being down only costs speed: reads go to Postgres and nothing fails."""

from __future__ import annotations

import contextlib
import logging

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from cart.schemas import Product

log = logging.getLogger("cart.cache")

CACHE_REQUESTS = Counter(
    "cache_requests_total",
    "Product cache lookups, by result (hit, miss, error).",
    ["cache", "result"],
)


class ProductCache:
    def __init__(self, redis: Redis, *, ttl_seconds: int) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds

    @staticmethod
    def _key(product_id: str) -> str:
        return f"cart:product:{product_id}"

    async def get(self, product_id: str) -> Product | None:
        try:
            cached = await self.redis.get(self._key(product_id))
        except RedisError as exc:
            CACHE_REQUESTS.labels("product", "error").inc()
            log.warning("product cache unavailable", extra={"error": repr(exc)})
            return None
        CACHE_REQUESTS.labels("product", "hit" if cached else "miss").inc()
        return Product.model_validate_json(cached) if cached else None

    async def put(self, item: Product) -> None:
        # Failing to fill only means the next read goes to Postgres again.
        with contextlib.suppress(RedisError):
            await self.redis.set(self._key(item.id), item.model_dump_json(), ex=self.ttl_seconds)

    async def evict(self, *product_ids: str) -> None:
        if not product_ids:
            return
        try:
            await self.redis.delete(*(self._key(p) for p in product_ids))
        except RedisError as exc:
            # The TTL bounds how long a stale entry can live.
            log.warning("could not evict cached products", extra={"error": repr(exc)})
