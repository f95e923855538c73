"""Cache-aside for single products in the shared Redis: read the cache, fall back to
Postgres and fill the cache with a TTL; evict on every change of price or stock. Redis
being down only costs speed: reads go to Postgres and nothing fails.

A fill must never write back a row older than the last eviction: a reader that missed,
read the old row, and was overtaken by an update and its eviction would otherwise cache
the old price for a whole TTL. So fills are leased, as memcache's leases are: a miss
takes (or joins) the product's lease, `evict` deletes the lease with the value, and
`put` writes only while the lease it saw is still there. Every reader that saw a lease
read Postgres after the lease was taken, so any update its row misses evicts after
that, and kills the lease before the fill or the value after it.

In front of Redis, each instance keeps a copy of what it served for a second
(`LocalCopies`, dropped everywhere by `evict` through pub/sub); without it, or while it
is not subscribed, every read asks Redis.

The lease a miss saw is carried to `put` in the caller's context (a `ContextVar`), so
callers keep the plain get / read Postgres / put shape. A per-instance map would not do:
another reader's newer lease would let an old row through.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

from prometheus_client import Counter
from redis.exceptions import RedisError

from cart.local_copies import EVICTIONS_CHANNEL, LocalCopies
from cart.schemas import Product
from kit.redis import RedisClient
from kit.redis_broadcast import BroadcastChannel
from kit.redis_script import LuaScript

log = logging.getLogger("cart.cache")

CACHE_REQUESTS = Counter(
    "cache_requests_total",
    "Product cache lookups, by result (hit, miss, error) and the level that answered "
    "(local: the instance's own copy; redis).",
    ["cache", "result", "level"],
)

_LOCAL_HITS = CACHE_REQUESTS.labels("product", "hit", "local")

# Long enough for one Postgres read, short enough that a reader that died holding a lease
# delays nobody's fill for long.
LEASE_MILLISECONDS = 2000

# KEYS: value, lease (one hash slot: see `_key`); ARGV: lease seen on the miss, product
# JSON, TTL in seconds.
FILL_IF_LEASED = """
if redis.call('GET', KEYS[2]) == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
    redis.call('DEL', KEYS[2])
    return 1
end
return 0
"""

# The leases this task's misses saw, by product id; replaced, never mutated, so tasks
# that copied the context never share one.
_leases: ContextVar[MappingProxyType[str, str]] = ContextVar(
    "product_cache_leases", default=MappingProxyType({})
)


class ProductCache:
    def __init__(
        self, redis: RedisClient, *, ttl_seconds: int, local: LocalCopies | None = None
    ) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self.local = local
        self._fill = LuaScript(redis, FILL_IF_LEASED)
        self._evictions = BroadcastChannel(redis, EVICTIONS_CHANNEL)

    # The product id in braces is the keys' hash tag: a cluster hashes only that part,
    # so a product's value and lease live on one node, as the fill script needs.
    @staticmethod
    def _key(product_id: str) -> str:
        return f"cart:product:{{{product_id}}}"

    @staticmethod
    def _lease_key(product_id: str) -> str:
        return f"cart:product-lease:{{{product_id}}}"

    async def get(self, product_id: str) -> Product | None:
        """The cached product; on a miss, the lease for filling it is remembered."""
        read_since = 0
        if self.local is not None:
            copy = self.local.get(product_id)
            if copy is not None:
                _LOCAL_HITS.inc()
                return copy
            read_since = self.local.generation
        try:
            cached = await self.redis.get(self._key(product_id))
            lease = None if cached else await self._take_lease(product_id)
        except RedisError as exc:
            CACHE_REQUESTS.labels("product", "error", "redis").inc()
            log.warning("product cache unavailable", extra={"error": repr(exc)})
            return None
        CACHE_REQUESTS.labels("product", "hit" if cached else "miss", "redis").inc()
        if lease is not None:
            _leases.set(MappingProxyType({**_leases.get(), product_id: lease}))
        if not cached:
            return None
        product = Product.model_validate_json(cached)
        if self.local is not None:
            self.local.keep(product, read_since=read_since)
        return product

    async def _take_lease(self, product_id: str) -> str:
        """A new lease, or the one another reader took: either was taken before our
        read of Postgres, which is all a fill needs."""
        mine = secrets.token_hex(8)
        current: Any = await self.redis.set(
            self._lease_key(product_id), mine, nx=True, px=LEASE_MILLISECONDS, get=True
        )
        return mine if current is None else _text(current)

    async def put(self, item: Product) -> None:
        """Fills the cache with a row read after this task's last miss on it, unless the
        product was evicted since; without a miss there is nothing to fill."""
        leases = _leases.get()
        lease = leases.get(item.id)
        if lease is None:
            return
        _leases.set(MappingProxyType({k: v for k, v in leases.items() if k != item.id}))
        # Failing to fill only means the next read goes to Postgres again.
        with contextlib.suppress(RedisError):
            await self._fill(
                keys=[self._key(item.id), self._lease_key(item.id)],
                args=[lease, item.model_dump_json(), self.ttl_seconds],
            )

    async def evict(self, *product_ids: str) -> None:
        if not product_ids:
            return
        if self.local is not None:
            self.local.drop(product_ids)
        keys = [k for p in product_ids for k in (self._key(p), self._lease_key(p))]
        try:
            await self.redis.delete(*keys)
            # After the delete: an instance that drops its copy and reads again must
            # not find the old value in Redis.
            await self._evictions.publish(" ".join(product_ids))
        except RedisError as exc:
            # The TTL bounds how long a stale entry can live.
            log.warning("could not evict cached products", extra={"error": repr(exc)})


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
