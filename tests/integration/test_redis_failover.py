"""Redis runs as a Redis Cluster of three shards, a primary and a replica each, and the
carts spread over them by hash slot. One shard's primary is killed while shoppers read
their carts: its replica is promoted and writes to the shard resume within the issue's
10 s; shoppers whose carts live on the other shards notice nothing, those on the dead
shard get fast 503s meanwhile and find their carts intact after; the old primary comes
back as the new one's replica."""

from __future__ import annotations

import time

import httpx
import pytest
import redis

from cart.cart_store import CartStore
from shopctl import redis_cluster
from shopctl.chaos import failover
from shopctl.chaos.shard_carts import describe, not_honest, shard_of, user_id
from shopctl.chaos.target import Target, use
from shopctl.clusters import RedisShard
from shopctl.local import LocalStack
from tests.integration.test_cart import customer

pytestmark = pytest.mark.integration


def _cart_key(user: dict[str, str]) -> str:
    return CartStore.key(user_id(user))


def _shoppers(
    stack: LocalStack, gw: httpx.Client, shards: set[str]
) -> dict[str, list[dict[str, str]]]:
    """Shoppers with a chair in their cart, by the primary holding the cart, until each of
    `shards` holds one (the sign-up budget of 127.0.0.1 allows 20)."""
    by_shard: dict[str, list[dict[str, str]]] = {}
    for _ in range(20):
        user = customer(gw)
        put = gw.put("/cart/items/oak-chair", json={"quantity": 1}, headers=user)
        assert put.status_code == 200, put.text
        by_shard.setdefault(shard_of(stack.topology, _cart_key(user)), []).append(user)
        if shards <= by_shard.keys():
            return by_shard
    counts = {name: len(users) for name, users in by_shard.items()}
    raise AssertionError(f"20 carts did not reach each of {sorted(shards)}: {counts}")


def test_three_shards_each_a_primary_with_a_replica_share_the_carts(
    stack: LocalStack, gw: httpx.Client
) -> None:
    view = redis_cluster.view(stack.topology.redis_nodes())
    primaries = {name for name, node in view.items() if node.primary}
    replicas = {name: node.primary_of for name, node in view.items() if not node.primary}
    assert len(primaries) == 3 and not any(node.failing for node in view.values())
    assert sum(view[name].slots for name in primaries) == redis_cluster.SLOTS
    assert sorted(replicas.values()) == sorted(primaries)  # one replica each
    _shoppers(stack, gw, primaries)
    keys = redis_cluster.view(stack.topology.redis_nodes())
    assert all((keys[name].keys or 0) > 0 for name in primaries), keys


def _on_replica(stack: LocalStack, replica: str, key: str) -> bool:
    node = next(n for n in stack.topology.redis_nodes() if n.name == replica)
    with redis.Redis(host=node.host, port=node.port, socket_timeout=1) as client:
        client.execute_command("READONLY")
        return bool(client.exists(key))


def test_a_shard_primary_dies_its_replica_takes_over_and_the_other_shards_notice_nothing(
    stack: LocalStack, gw: httpx.Client
) -> None:
    use(Target("local", stack))
    shard = RedisShard(stack.topology)
    before = shard.leader()
    assert before is not None
    (replica,) = shard.followers()
    victims = _shoppers(stack, gw, {before})[before]
    # The victims' carts are on the replica too before the kill (replication is async).
    deadline = time.monotonic() + 10
    while not all(_on_replica(stack, replica, _cart_key(user)) for user in victims):
        assert time.monotonic() < deadline, "the replica never got the carts"
        time.sleep(0.1)

    # Meanwhile shoppers on every shard read their carts (shopctl/chaos/shard_carts.py).
    killed = failover.kill_leader("redis", within_seconds=30)
    back = failover.bring_back("redis", within_seconds=60)

    assert killed["killed"] == before
    assert killed["new_leader"] == replica
    assert killed["writes_resumed_s"] is not None and killed["writes_resumed_s"] < 10
    unaffected, affected = killed["carts"]["others"], killed["carts"]["shard"]
    assert unaffected["count"] > 0 and unaffected["failed"] == []
    assert affected["failed"] and not_honest(affected) == []
    for user in victims:  # nothing lost with the primary
        cart = gw.get("/cart", headers=user)
        assert cart.status_code == 200, cart.text
        assert [line["product_id"] for line in cart.json()["items"]] == ["oak-chair"]
    assert before in back["following"]
    print(
        f"\nRedis primary {before} killed: writes to its shard again after "
        f"{killed['writes_resumed_s']:.1f}s, {replica} leads; carts on the other shards: "
        f"{describe(unaffected)}; on this shard: {describe(affected)}; {before} back as a "
        "replica"
    )
