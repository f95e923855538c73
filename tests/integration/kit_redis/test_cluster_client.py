"""The kit's Redis Cluster client against a real cluster (local_cluster.py), through the
services' own code: carts, the product cache and its evictions, the login limiter, on
every shard. Every node announces an address that does not resolve, so each connection
the client makes goes through REDIS_ADDRESS_MAP; a cluster that does not answer costs a
fast error."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from contextlib import ExitStack

import pytest
import redis

from auth.config import AuthSettings
from auth.errors import TooManyAttempts
from auth.ratelimit import LoginLimiter
from cart.cart_store import CartStore
from cart.config import CartSettings
from cart.local_copies import LocalCopies
from cart.product_cache import ProductCache
from cart.schemas import Product
from kit import DependencyUnavailable, Redis
from kit.redis_cluster import ClusterClient
from tests.integration.kit_redis.local_cluster import (
    LocalRedisCluster,
    eventually,
    free_ports,
    on_each_primary,
)

pytestmark = pytest.mark.integration


def cluster_client(component: Redis) -> ClusterClient:
    assert isinstance(component.client, ClusterClient)
    return component.client


def a_product(product_id: str) -> Product:
    return Product(
        id=product_id, name="Cluster test", description="", price_cents=1000,
        currency="EUR", stock=3,
    )  # fmt: skip


# -- working cluster ---------------------------------------------------------------------


async def test_carts_live_on_every_shard(cluster: LocalRedisCluster, redis_kit: Redis) -> None:
    carts = CartStore(redis_kit.client, ttl_seconds=600)
    users = on_each_primary(cluster_client(redis_kit), cluster, CartStore.key)
    assert len(users) == 3
    for user in users.values():
        assert await carts.set_quantity(user, "oak-desk", 2) == {"oak-desk": 2}
        assert await carts.set_quantity(user, "pine-shelf", 1) == {"oak-desk": 2, "pine-shelf": 1}
        assert await carts.remove(user, "oak-desk") == {"pine-shelf": 1}
        assert await carts.lines(user) == {"pine-shelf": 1}
        await carts.clear(user)
        assert await carts.lines(user) == {}


async def test_the_product_cache_fills_and_evicts_on_every_shard(
    cluster: LocalRedisCluster, redis_kit: Redis
) -> None:
    client = cluster_client(redis_kit)
    cache = ProductCache(client, ttl_seconds=30)
    products = on_each_primary(client, cluster, ProductCache._key)
    for product_id in products.values():
        # The fill script's two keys share the product's hash tag, so its slot.
        assert client.keyslot(ProductCache._key(product_id)) == client.keyslot(
            ProductCache._lease_key(product_id)
        )
        assert await cache.get(product_id) is None  # a miss takes the fill's lease
        await cache.put(a_product(product_id))
        assert await cache.get(product_id) == a_product(product_id)
    # One eviction of products on all three shards: DEL per slot.
    await cache.evict(*products.values())
    for product_id in products.values():
        assert await client.get(ProductCache._key(product_id)) is None
        assert await client.get(ProductCache._lease_key(product_id)) is None


async def test_an_eviction_published_on_any_node_reaches_every_listener(
    cluster: LocalRedisCluster, redis_kit: Redis
) -> None:
    copies = LocalCopies(redis_kit.client, ttl_seconds=60)
    await copies.start()
    try:
        await eventually(lambda: copies.subscribed, within=5, what="the subscription")
        product = a_product(f"evicted-{uuid.uuid4().hex[:8]}")
        another_instance = ProductCache(redis_kit.client, ttl_seconds=30)
        # Each publish goes to the next node in turn: one per node covers every node
        # the client knows, whichever one the listener is on.
        for _ in cluster.nodes:
            copies.keep(product, read_since=copies.generation)
            assert copies.get(product.id) == product
            await another_instance.evict(product.id)
            await eventually(
                lambda: copies.get(product.id) is None, within=2, what="the eviction heard"
            )
    finally:
        await copies.stop()


async def test_login_limits_count_on_every_shard(
    cluster: LocalRedisCluster, redis_kit: Redis
) -> None:
    settings = AuthSettings(
        redis_cluster_nodes=cluster.startup_nodes,
        redis_address_map=cluster.address_map,
        login_failures_per_account=3,
        login_failure_window_seconds=60,
        login_attempts_per_address=2,
    )
    limiter = LoginLimiter(redis_kit.client, settings)
    client = cluster_client(redis_kit)
    emails = on_each_primary(client, cluster, lambda name: LoginLimiter._account_key(name))
    addresses = on_each_primary(client, cluster, lambda name: f"auth:login:address:{name}")
    for email in emails.values():
        for _ in range(3):
            await limiter.take_failure_slot(email)
        with pytest.raises(TooManyAttempts) as refused:
            await limiter.take_failure_slot(email)
        assert 0 < refused.value.retry_after_seconds <= 60
        await limiter.clear(email)
        await limiter.take_failure_slot(email)
        await limiter.give_back(email)
    for address in addresses.values():
        await limiter.check_address(address)
        await limiter.check_address(address)
        with pytest.raises(TooManyAttempts):
            await limiter.check_address(address)


async def test_a_healthy_cluster_is_ready(redis_kit: Redis) -> None:
    await redis_kit.check()


# -- addresses ---------------------------------------------------------------------------


async def test_every_connection_goes_to_a_mapped_address(
    cluster: LocalRedisCluster, redis_kit: Redis
) -> None:
    client = cluster_client(redis_kit)
    carts = CartStore(client, ttl_seconds=600)
    for user in on_each_primary(client, cluster, CartStore.key).values():
        await carts.lines(user)
    await redis_kit.check()
    # The nodes announce node-<port>.invalid: every one the client knows (found in the
    # slot map; two were configured) is known by its mapped 127.0.0.1 address. (Redis
    # lists a replica in the slot map only once it has replicated something.)
    known = sorted(client.nodes_manager.nodes_cache)
    assert all(name.startswith("127.0.0.1:") for name in known), known
    assert {f"127.0.0.1:{port}" for port in cluster.primaries()} <= set(known)


async def test_without_the_address_map_the_announced_addresses_are_not_reached(
    cluster: LocalRedisCluster,
) -> None:
    await asyncio.to_thread(cluster.wait_until_healthy)
    unmapped = Redis(CartSettings(redis_cluster_nodes=cluster.startup_nodes))
    carts = CartStore(unmapped.client, ttl_seconds=600)
    try:
        with pytest.raises(DependencyUnavailable):
            await carts.lines("someone")
    finally:
        await unmapped.stop()


async def test_a_moved_redirect_is_followed_through_the_address_map(
    cluster: LocalRedisCluster, redis_kit: Redis
) -> None:
    client = cluster_client(redis_kit)
    carts = CartStore(client, ttl_seconds=600)
    primary, user = next(iter(on_each_primary(client, cluster, CartStore.key).items()))
    await carts.set_quantity(user, "oak-desk", 1)
    replica = cluster.replica_of(primary)
    # A manual failover: the old primary stays up, as a replica, and answers the
    # client's next call with MOVED to the new primary's announced address.
    with cluster.node(replica).admin() as admin:
        admin.execute_command("CLUSTER FAILOVER")
    await eventually(lambda: cluster.seen_as_primary(replica), within=10, what="the failover")
    await asyncio.to_thread(cluster.wait_until_healthy)
    asked_for_maps = cluster.cluster_slots_calls()
    assert await carts.lines(user) == {"oak-desk": 1}
    # Followed to the mapped address at once: no slot map fetched again.
    assert cluster.cluster_slots_calls() == asked_for_maps
    assert int(client.get_node_from_key(CartStore.key(user)).port) == replica
    assert all(name.startswith("127.0.0.1:") for name in client.nodes_manager.nodes_cache)


async def test_a_slot_missing_from_the_map_costs_a_fast_503_and_the_map_is_fetched_again(
    cluster: LocalRedisCluster, redis_kit: Redis
) -> None:
    """A map fetched from a node whose view was partial (the cluster forming, a failover
    under way) lacks some slots: calls on them fail fast, and the client asks again."""
    client = cluster_client(redis_kit)
    carts = CartStore(redis_kit.client, ttl_seconds=600)
    user = f"partial-{uuid.uuid4()}"
    await carts.set_quantity(user, "oak-desk", 1)
    slot = client.keyslot(CartStore.key(user))
    del client.nodes_manager.slots_cache[slot]
    with pytest.raises(DependencyUnavailable):
        await carts.lines(user)
    await asyncio.sleep(0.3)  # the client fetches a map at most every 0.25 s
    assert await carts.lines(user) == {"oak-desk": 1}
    assert slot in client.nodes_manager.slots_cache


# -- nothing answers ---------------------------------------------------------------------


@pytest.mark.parametrize("nodes", ["silent", "down"])
async def test_a_cluster_that_does_not_answer_costs_a_fast_503(nodes: str) -> None:
    timeout = 0.3
    ports = free_ports(3)
    with ExitStack() as listeners:
        if nodes == "silent":
            # Ports that accept connections and never answer: a paused or cut-off node.
            for port in ports:
                listener = listeners.enter_context(socket.socket())
                listener.bind(("127.0.0.1", port))
                listener.listen(64)
        component = Redis(
            CartSettings(
                redis_cluster_nodes=",".join(f"127.0.0.1:{port}" for port in ports),
                dependency_timeout_seconds=timeout,
            )
        )
        carts = CartStore(component.client, ttl_seconds=600)
        started = time.monotonic()
        answers = await asyncio.gather(
            *(carts.lines(f"user-{i}") for i in range(5)), return_exceptions=True
        )
        took = time.monotonic() - started
        with pytest.raises(redis.RedisError):  # not ready
            await asyncio.wait_for(component.check(), 2 * timeout + 0.5)
        await component.stop()
    assert all(isinstance(answer, DependencyUnavailable) for answer in answers), answers
    # Asking three silent nodes one after another would take 3 x 0.3 s, and the calls
    # would queue behind each other's attempt; the deadline (2 x 0.3 s) bounds them all.
    assert took < 2 * timeout + 0.3, took


async def test_a_client_made_before_the_cluster_is_formed_uses_it_once_it_is(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The stack starts its services while shopctl forms the cluster: the nodes answer,
    with no slots yet. The client fails fast meanwhile, and keeps the nodes it was given
    (redis-py, given an empty slot map, would forget them for good)."""
    late = LocalRedisCluster(tmp_path_factory.mktemp("late-cluster"))
    try:
        late.start_nodes()
        component = Redis(
            CartSettings(redis_cluster_nodes=late.startup_nodes, redis_address_map=late.address_map)
        )
        store = CartStore(component.client, ttl_seconds=60)
        with pytest.raises(DependencyUnavailable):
            await store.lines("early")
        late.form()
        await store.set_quantity("later", "oak-chair", 1)
        assert await store.lines("later") == {"oak-chair": 1}
        await component.stop()
    finally:
        late.stop()
