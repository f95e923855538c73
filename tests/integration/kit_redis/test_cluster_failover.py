"""One node of the real cluster killed (SIGKILL) under the services' own code.

A shard's primary: calls on the other shards go on without a single error (carts, login
limits, evictions spanning shards, scripts that must be sent again), calls on the dead
shard fail fast until its replica is promoted and then work through the same client,
and a cart written before the kill is still there. The node the eviction listener is
on: the listener drops its copies, subscribes on another node, and hears evictions
again. Each test restarts the node it killed (it rejoins as a replica)."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from dataclasses import dataclass, field

import pytest
import redis

from auth.config import AuthSettings
from auth.ratelimit import LoginLimiter
from cart.cart_store import CartStore
from cart.local_copies import EVICTIONS_CHANNEL, LocalCopies
from cart.product_cache import ProductCache
from cart.schemas import Product
from kit import DependencyUnavailable, Redis
from kit.redis_cluster import REFRESH_INTERVAL_SECONDS, ClusterClient
from tests.integration.kit_redis.local_cluster import (
    LocalRedisCluster,
    eventually,
    on_each_primary,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# A call on the dead shard must fail within this.
FAST_FAILURE_SECONDS = 2.5


@dataclass
class Calls:
    """Durations of calls, and what went wrong with them."""

    seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def figures(self) -> str:
        if not self.seconds:
            return "no calls"
        ms = sorted(s * 1000 for s in self.seconds)
        return (
            f"{len(ms)} calls, median {statistics.median(ms):.1f} ms, "
            f"p99 {ms[int(0.99 * (len(ms) - 1))]:.1f} ms, max {ms[-1]:.1f} ms"
        )


def in_replica(cluster: LocalRedisCluster, replica: int, key: str) -> dict[str, str]:
    node = cluster.node(replica)
    with redis.Redis(
        port=node.port, decode_responses=True, single_connection_client=True, socket_timeout=1
    ) as admin:
        admin.execute_command("READONLY")
        return dict(admin.hgetall(key))


async def test_a_dead_primary_costs_only_its_own_shard_and_only_until_failover(
    cluster: LocalRedisCluster, redis_kit: Redis
) -> None:
    client = redis_kit.client
    assert isinstance(client, ClusterClient)
    carts = CartStore(client, ttl_seconds=3600)
    cache = ProductCache(client, ttl_seconds=30)
    limiter = LoginLimiter(
        client,
        AuthSettings(
            redis_cluster_nodes=cluster.startup_nodes,
            redis_address_map=cluster.address_map,
            login_attempts_per_address=10**9,
        ),
    )
    users = on_each_primary(client, cluster, CartStore.key)
    addresses = on_each_primary(client, cluster, lambda name: f"auth:login:address:{name}")
    products = on_each_primary(client, cluster, ProductCache._key)
    victim, *healthy = sorted(users)
    replica = cluster.replica_of(victim)

    # A cart on the shard about to lose its primary, already copied to the replica.
    doomed_cart = users[victim]
    await carts.set_quantity(doomed_cart, "oak-desk", 3)
    await eventually(
        lambda: in_replica(cluster, replica, CartStore.key(doomed_cart)) == {"oak-desk": "3"},
        within=5,
        what="the cart replicated",
    )

    maps_fetched_before = cluster.cluster_slots_calls(leaving_out=victim)
    cluster.kill(victim)
    killed_at = time.monotonic()
    # The healthy shards lose their scripts too, as a restarted node would: they must be
    # sent again while a primary is down (redis-py would SCRIPT LOAD on every primary).
    for port in healthy:
        with cluster.node(port).admin() as admin:
            admin.script_flush()

    healthy_calls, dead_calls, readiness = Calls(), Calls(), Calls()
    promoted_at: float | None = None
    works_again_at: float | None = None
    done = asyncio.Event()

    async def on_healthy_shards() -> None:
        round_ = 0
        while not done.is_set():
            round_ += 1
            for port in healthy:
                started = time.monotonic()
                try:
                    lines = await carts.set_quantity(users[port], "pine-shelf", round_)
                    assert lines == {"pine-shelf": round_}
                    await limiter.check_address(addresses[port])
                    await client.set(ProductCache._key(products[port]), "{}", ex=30)
                except Exception as exc:
                    healthy_calls.errors.append(repr(exc))
                healthy_calls.seconds.append(time.monotonic() - started)
            await asyncio.sleep(0.005)

    async def on_the_dead_shard() -> None:
        nonlocal works_again_at
        while works_again_at is None:
            started = time.monotonic()
            try:
                lines = await carts.lines(doomed_cart)
                works_again_at = time.monotonic()
                assert lines == {"oak-desk": 3}
            except DependencyUnavailable:
                dead_calls.seconds.append(time.monotonic() - started)
            # One eviction across the dead shard and a healthy one: DEL on the dead
            # slot fails (and is logged); the healthy shards must not notice.
            await cache.evict(products[victim], products[healthy[0]])
            await asyncio.sleep(0.05)

    async def watch_the_promotion() -> None:
        nonlocal promoted_at
        while promoted_at is None:
            if await asyncio.to_thread(cluster.seen_as_primary, replica):
                promoted_at = time.monotonic()
            else:
                await asyncio.sleep(0.05)

    async def ask_readiness() -> None:
        while not done.is_set():
            started = time.monotonic()
            try:
                await asyncio.wait_for(redis_kit.check(), 1.5)
            except Exception as exc:
                readiness.errors.append(repr(exc))
            readiness.seconds.append(time.monotonic() - started)
            await asyncio.sleep(0.2)

    async def until_both_then_a_little_more() -> None:
        await asyncio.gather(watch_the_promotion(), on_the_dead_shard())
        await asyncio.sleep(0.5)
        done.set()

    async with asyncio.timeout(30):
        await asyncio.gather(on_healthy_shards(), ask_readiness(), until_both_then_a_little_more())

    assert promoted_at is not None and works_again_at is not None
    outage = works_again_at - killed_at
    maps_fetched = cluster.cluster_slots_calls(leaving_out=victim) - maps_fetched_before
    print(
        f"\nkill -> replica promoted {promoted_at - killed_at:.2f} s; "
        f"kill -> dead shard works again {works_again_at - killed_at:.2f} s "
        f"({works_again_at - promoted_at:+.2f} s after the promotion was seen)"
        f"\ndead shard, failed calls: {dead_calls.figures()}"
        f"\nhealthy shards, calls (cart + limit + set): {healthy_calls.figures()}, "
        f"{len(healthy_calls.errors)} errors"
        f"\nreadiness: {readiness.figures()}, {len(readiness.errors)} not ready"
        f"\nslot maps fetched: {maps_fetched}"
    )
    assert healthy_calls.errors == []
    assert readiness.errors == []
    assert dead_calls.seconds, "the dead shard was never seen failing"
    assert max(dead_calls.seconds) < FAST_FAILURE_SECONDS
    # The same client found the promoted replica by itself, soon after the promotion.
    assert works_again_at - promoted_at < 2.0
    assert all(name.startswith("127.0.0.1:") for name in client.nodes_manager.nodes_cache)
    # Every failed call asks for a fresh slot map, but the client fetches at most one per
    # REFRESH_INTERVAL_SECONDS (and the test's readiness probes one more now and then).
    assert maps_fetched <= outage / REFRESH_INTERVAL_SECONDS + 3, maps_fetched
    # Written before the kill, kept by the replica now serving.
    assert await carts.lines(doomed_cart) == {"oak-desk": 3}

    # The killed node comes back (its append-only file and nodes.conf) as the replica of
    # the promoted one, and holds the cart again.
    cluster.start_node(victim)
    await asyncio.to_thread(cluster.wait_until_healthy)
    assert cluster.roles()[victim].primary_port == replica
    assert in_replica(cluster, victim, CartStore.key(doomed_cart)) == {"oak-desk": "3"}


def subscribed_nodes(cluster: LocalRedisCluster) -> list[int]:
    """The live nodes where an evictions listener is subscribed."""
    listening = []
    for node in cluster.live():
        with node.admin() as admin:
            numsub = dict(admin.pubsub_numsub(EVICTIONS_CHANNEL))
        if numsub.get(EVICTIONS_CHANNEL):
            listening.append(node.port)
    return listening


async def test_the_eviction_listener_moves_to_another_node_when_its_node_dies(
    cluster: LocalRedisCluster, redis_kit: Redis
) -> None:
    client = redis_kit.client
    assert isinstance(client, ClusterClient)
    copies = LocalCopies(client, ttl_seconds=60)
    await copies.start()
    try:
        await eventually(lambda: copies.subscribed, within=5, what="the subscription")
        [listened_on] = subscribed_nodes(cluster)
        product = Product(
            id=f"moved-{uuid.uuid4().hex[:8]}", name="Cluster test", description="",
            price_cents=1000, currency="EUR", stock=3,
        )  # fmt: skip
        copies.keep(product, read_since=copies.generation)
        assert copies.get(product.id) == product

        cluster.kill(listened_on)
        # Unsubscribed: every copy is dropped at once, none kept until subscribed again.
        await eventually(lambda: not copies.subscribed, within=2, what="the loss noticed")
        assert copies.get(product.id) is None
        await eventually(lambda: copies.subscribed, within=5, what="a new subscription")
        assert subscribed_nodes(cluster) != [listened_on]

        # Evictions are heard on the new node (published on other nodes in turn).
        another_instance = ProductCache(client, ttl_seconds=30)
        for _ in range(3):
            copies.keep(product, read_since=copies.generation)
            await another_instance._evictions.publish(product.id)
            await eventually(
                lambda: copies.get(product.id) is None, within=2, what="the eviction heard"
            )
    finally:
        await copies.stop()
    cluster.start_node(listened_on)
    await asyncio.to_thread(cluster.wait_until_healthy)
