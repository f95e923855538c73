"""The product cache against the stack's real Redis: a fill that an eviction overtook
never writes its older row back (issue 10), and fills that nothing overtook still cache."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from redis.asyncio.cluster import ClusterNode, RedisCluster

from cart.config import CartSettings
from cart.product_cache import ProductCache
from cart.schemas import Product
from cart.service import Catalog
from kit import Postgres
from shopctl.local import LocalStack
from shopctl.topology import ROOT, database_url
from tests.integration.test_auth import bearer, login

pytestmark = pytest.mark.integration

CART_DIR = ROOT / "services" / "cart"
# A product no other test changes; its price is put back at the end.
PRODUCT = "cherry-stool"


@pytest.fixture
async def redis(stack: LocalStack) -> AsyncIterator[RedisCluster]:
    nodes = [ClusterNode(n.host, n.port) for n in stack.topology.redis_nodes()]
    client = RedisCluster(startup_nodes=nodes, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def cache(redis: RedisCluster) -> ProductCache:
    return ProductCache(redis, ttl_seconds=30)


def a_product(price_cents: int = 1000) -> Product:
    return Product(
        id=f"lease-test-{uuid.uuid4().hex[:10]}",
        name="Lease test",
        description="Only in the cache, never in Postgres.",
        price_cents=price_cents,
        currency="EUR",
        stock=1,
    )


async def test_a_fill_overtaken_by_an_eviction_is_not_cached(cache: ProductCache) -> None:
    old = a_product()
    assert await cache.get(old.id) is None  # the reader misses, then reads Postgres
    await cache.evict(old.id)  # an admin's change lands meanwhile
    await cache.put(old)
    assert await cache.get(old.id) is None


async def test_a_fill_nothing_overtook_is_cached(cache: ProductCache) -> None:
    row = a_product()
    assert await cache.get(row.id) is None
    await cache.put(row)
    assert await cache.get(row.id) == row


async def test_concurrent_readers_overtaken_by_an_eviction_cache_nothing(
    cache: ProductCache,
) -> None:
    old = a_product()
    all_missed = asyncio.Barrier(4)
    may_fill = asyncio.Event()

    async def reader() -> None:
        assert await cache.get(old.id) is None
        await all_missed.wait()
        await may_fill.wait()
        await cache.put(old)

    # Tasks, like requests: each reader has its own context, hence its own lease.
    readers = [asyncio.create_task(reader()) for _ in range(3)]
    async with asyncio.timeout(5):
        await all_missed.wait()
    await cache.evict(old.id)
    may_fill.set()
    await asyncio.gather(*readers)
    assert await cache.get(old.id) is None
    # The next reader misses after the eviction and fills as usual.
    fresh = old.model_copy(update={"price_cents": old.price_cents + 1})
    await cache.put(fresh)
    assert await cache.get(old.id) == fresh


async def test_a_put_without_a_miss_writes_nothing(cache: ProductCache) -> None:
    row = a_product()
    await cache.put(row)
    assert await cache.get(row.id) is None


class OvertakenCache(ProductCache):
    """A reader descheduled between its Postgres read and its fill, while something
    else runs: the interleaving of issue 10, made certain."""

    def __init__(
        self, redis: RedisCluster, *, ttl_seconds: int, meanwhile: Callable[[], Awaitable[object]]
    ) -> None:
        super().__init__(redis, ttl_seconds=ttl_seconds)
        self.meanwhile = meanwhile

    async def put(self, item: Product) -> None:
        await self.meanwhile()
        await super().put(item)


@pytest.fixture
async def cart_db(stack: LocalStack) -> AsyncIterator[Postgres]:
    url = database_url("cart", stack.topology.postgres_addresses())
    db = Postgres(CartSettings(database_url=url), migrations_dir=CART_DIR / "migrations")
    await db.start()
    async with asyncio.timeout(10):
        await db.migrated.wait()
    yield db
    await db.stop()


def catalog(db: Postgres, cache: ProductCache) -> Catalog:
    return Catalog(db=db, cache=cache, seed_file=CART_DIR / "data" / "products.json")


async def test_a_price_change_during_a_read_shows_at_once_everywhere(
    stack: LocalStack, cart_db: Postgres, redis: RedisCluster, cache: ProductCache
) -> None:
    admin = catalog(cart_db, cache)
    await cache.evict(PRODUCT)
    original = await admin.product(product_id=PRODUCT)
    await cache.evict(PRODUCT)
    changed = original.price_cents + 1

    async def admin_changes_the_price() -> None:
        await admin.update(product_id=PRODUCT, price_cents=changed, stock=None)

    reader = catalog(
        cart_db, OvertakenCache(redis, ttl_seconds=30, meanwhile=admin_changes_the_price)
    )
    try:
        # The reader answers with the row it read before the change (as any read in
        # flight may), but must not leave that row cached.
        assert (await reader.product(product_id=PRODUCT)).price_cents == original.price_cents
        assert (await admin.product(product_id=PRODUCT)).price_cents == changed
        gateway = f"http://127.0.0.1:{stack.settings['GATEWAY_PORT']}"
        async with httpx.AsyncClient(base_url=gateway) as gw:
            for _ in range(4):  # both cart instances read the same cache
                answer = await gw.get(f"/products/{PRODUCT}")
                assert answer.json()["price_cents"] == changed
    finally:
        await admin.update(product_id=PRODUCT, price_cents=original.price_cents, stock=None)


async def test_the_service_still_fills_the_cache_on_a_miss(
    stack: LocalStack, cache: ProductCache
) -> None:
    await cache.evict(PRODUCT)
    gateway = f"http://127.0.0.1:{stack.settings['GATEWAY_PORT']}"
    async with httpx.AsyncClient(base_url=gateway) as gw:
        answer = await gw.get(f"/products/{PRODUCT}")
    assert answer.status_code == 200
    # The lease a request's miss took reached its fill: the row is cached.
    assert await cache.get(PRODUCT) == Product.model_validate(answer.json())


def local_hits(instance: str) -> float:
    metrics = httpx.get(f"http://{instance}/metrics").text
    for line in metrics.splitlines():
        if line.startswith("cache_requests_total{") and 'level="local"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_every_instance_drops_its_own_copy_when_any_instance_changes_a_product(
    stack: LocalStack, gw: httpx.Client
) -> None:
    instances = [i.address for i in stack.topology.instances() if i.service == "cart"]
    assert len(instances) >= 2
    admin = bearer(
        login(gw, stack.settings["ADMIN_EMAIL"], stack.settings["ADMIN_PASSWORD"])["access_token"]
    )
    original = gw.get(f"/products/{PRODUCT}").json()["price_cents"]
    try:
        for changed in (original + 1, original + 2, original + 3):
            # Each instance reads the product until it serves its own copy.
            for instance in instances:
                before = local_hits(instance)
                for _ in range(3):
                    httpx.get(f"http://{instance}/products/{PRODUCT}").raise_for_status()
                assert local_hits(instance) > before, f"{instance} kept no copy"
            patched = gw.patch(f"/products/{PRODUCT}", json={"price_cents": changed}, headers=admin)
            assert patched.status_code == 200
            # At once, whichever instance answers: no copy outlives the change.
            for instance in instances:
                answer = httpx.get(f"http://{instance}/products/{PRODUCT}").json()
                assert answer["price_cents"] == changed, instance
    finally:
        gw.patch(f"/products/{PRODUCT}", json={"price_cents": original}, headers=admin)
