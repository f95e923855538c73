"""The product cache's first level: each instance keeps the products it served in its own
memory for a second, so a hot product costs no Redis round trip at all; any instance's
eviction drops them everywhere at once.

Evictions travel on a Redis pub/sub channel (with a Redis Cluster, heard on any node:
kit.redis_broadcast). Three rules keep a copy from outliving the row it was read from by
more than the channel's delivery:
- copies are kept only while this instance is subscribed; losing the subscription drops
  them all and keeps none until it is back;
- a copy is kept only if no eviction arrived since its read from Redis began (a
  generation count), so an eviction that overtook the read is never undone by it;
- pub/sub delivers at most once: a message lost on a link that went silent without
  closing is covered by the TTL, the bound on how stale a copy can ever be.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable

from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from cart.schemas import Product
from kit.redis import RedisClient
from kit.redis_broadcast import BroadcastChannel

log = logging.getLogger("cart.cache")

EVICTIONS_CHANNEL = "cart:product-evictions"
# The catalog is small; this only bounds memory if it ever is not.
MAX_COPIES = 10_000
RESUBSCRIBE_SECONDS = 1.0


class LocalCopies:
    def __init__(self, redis: RedisClient, *, ttl_seconds: float) -> None:
        self.evictions = BroadcastChannel(redis, EVICTIONS_CHANNEL)
        self.ttl_seconds = ttl_seconds
        self.generation = 0
        self.subscribed = False
        self._copies: dict[str, tuple[float, Product]] = {}
        self._listener: asyncio.Task[None] | None = None

    def get(self, product_id: str) -> Product | None:
        found = self._copies.get(product_id) if self.subscribed else None
        if found is None:
            return None
        expires, product = found
        if expires < time.monotonic():
            del self._copies[product_id]
            return None
        return product

    def keep(self, product: Product, *, read_since: int) -> None:
        """Keep a product read from Redis, unless an eviction arrived since `read_since`
        (the generation taken before the read)."""
        if not self.subscribed or self.generation != read_since:
            return
        if len(self._copies) >= MAX_COPIES:
            self._copies.clear()
        self._copies[product.id] = (time.monotonic() + self.ttl_seconds, product)

    def drop(self, product_ids: Iterable[str]) -> None:
        self.generation += 1
        for product_id in product_ids:
            self._copies.pop(product_id, None)

    def _drop_all(self) -> None:
        self.subscribed = False
        self.generation += 1
        self._copies.clear()

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="product-evictions")

    async def stop(self) -> None:
        if self._listener:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        self._drop_all()

    async def _listen(self) -> None:
        while True:
            pubsub: PubSub | None = None
            try:
                # With a cluster, each subscription is on the next node: one that died
                # is not asked again at once.
                pubsub = await self.evictions.pubsub()
                await pubsub.subscribe(self.evictions.name)
                async for message in pubsub.listen():
                    if message["type"] == "subscribe":
                        self.subscribed = True
                    elif message["type"] == "message":
                        self.drop(str(message["data"]).split())
            except (RedisError, OSError) as exc:
                log.warning("product evictions not heard; copies off", extra={"error": repr(exc)})
            finally:
                self._drop_all()
                if pubsub is not None:
                    with contextlib.suppress(RedisError, OSError):
                        await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(RESUBSCRIBE_SECONDS)
