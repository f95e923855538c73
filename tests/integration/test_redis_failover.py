"""Redis runs as a Redis Cluster of three shards, a primary and a replica each, and the
carts spread over them by hash slot. One shard's primary is killed while shoppers read
their carts: its replica is promoted and writes to the shard resume within the issue's
10 s; shoppers whose carts live on the other shards notice nothing, those on the dead
shard get fast 503s meanwhile and find their carts intact after; the old primary comes
back as the new one's replica."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest
import redis
from redis.crc import key_slot

from shopctl import redis_cluster
from shopctl.chaos import failover
from shopctl.chaos.target import Target, use
from shopctl.clusters import RedisShard
from shopctl.local import LocalStack
from tests.integration.faults import Repeating
from tests.integration.test_cart import customer

pytestmark = pytest.mark.integration


def _cart_key(user: dict[str, str]) -> str:
    token = user["Authorization"].removeprefix("Bearer ").split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    return f"cart:cart:{claims['sub']}"


def _shard(stack: LocalStack, key: str) -> str:
    node = redis_cluster.primary_of_slot(stack.topology.redis_nodes(), key_slot(key.encode()))
    assert node is not None
    return node.name


def _shoppers(stack: LocalStack, gw: httpx.Client, wanted: int) -> dict[str, list[Any]]:
    """Shoppers with a chair in their cart, by the primary holding the cart, until every
    shard has `wanted` of them."""
    by_shard: dict[str, list[Any]] = {}
    for _ in range(60):
        user = customer(gw)
        put = gw.put("/cart/items/oak-chair", json={"quantity": 1}, headers=user)
        assert put.status_code == 200, put.text
        by_shard.setdefault(_shard(stack, _cart_key(user)), []).append(user)
        if len(by_shard) == 3 and all(len(users) >= wanted for users in by_shard.values()):
            return by_shard
    raise AssertionError(f"carts did not reach every shard: {by_shard.keys()}")


def test_three_shards_each_a_primary_with_a_replica_share_the_carts(
    stack: LocalStack, gw: httpx.Client
) -> None:
    view = redis_cluster.view(stack.topology.redis_nodes())
    primaries = {name for name, node in view.items() if node.primary}
    replicas = {name: node.primary_of for name, node in view.items() if not node.primary}
    assert len(primaries) == 3 and not any(node.failing for node in view.values())
    assert sum(view[name].slots for name in primaries) == redis_cluster.SLOTS
    assert sorted(replicas.values()) == sorted(primaries)  # one replica each
    _shoppers(stack, gw, wanted=1)
    keys = redis_cluster.view(stack.topology.redis_nodes())
    assert all((keys[name].keys or 0) > 0 for name in primaries), keys


def _on_replica(stack: LocalStack, replica: str, key: str) -> bool:
    node = next(n for n in stack.topology.redis_nodes() if n.name == replica)
    with redis.Redis(host=node.host, port=node.port, socket_timeout=1) as client:
        client.execute_command("READONLY")
        return bool(client.exists(key))


class Readers(Repeating):
    """Each shopper reads their cart over and over: every answer that was not a 200,
    with how long it took."""

    def __init__(self, gw: httpx.Client, users: list[Any]) -> None:
        super().__init__(self._round)
        self.gw, self.users = gw, users
        self.failed: list[tuple[int, str | None, float]] = []
        self.read = 0

    def _round(self) -> None:
        for user in self.users:
            started = time.monotonic()
            answer = self.gw.get("/cart", headers=user)
            self.read += 1
            if answer.status_code != 200:
                took = time.monotonic() - started
                self.failed.append((answer.status_code, answer.headers.get("retry-after"), took))
        time.sleep(0.02)


def test_a_shard_primary_dies_its_replica_takes_over_and_the_other_shards_notice_nothing(
    stack: LocalStack, gw: httpx.Client
) -> None:
    use(Target("local", stack))
    shard = RedisShard(stack.topology)
    before = shard.leader()
    assert before is not None
    (replica,) = shard.followers()
    by_shard = _shoppers(stack, gw, wanted=2)
    victims = by_shard[before]
    others = [user for name, users in by_shard.items() if name != before for user in users]
    # The victims' carts are on the replica too before the kill (replication is async).
    deadline = time.monotonic() + 10
    while not all(_on_replica(stack, replica, _cart_key(user)) for user in victims):
        assert time.monotonic() < deadline, "the replica never got the carts"
        time.sleep(0.1)

    with Readers(gw, others) as unaffected, Readers(gw, victims) as affected:
        time.sleep(1)
        killed = failover.kill_leader("redis", within_seconds=30)
        time.sleep(2)
    back = failover.bring_back("redis", within_seconds=60)

    assert killed["killed"] == before
    assert killed["new_leader"] == replica
    assert killed["writes_resumed_s"] is not None and killed["writes_resumed_s"] < 10
    assert unaffected.read > 0 and unaffected.failed == []
    assert [f for f in affected.failed if f[0] != 503 or not f[1] or f[2] >= 3] == []
    for user in victims:  # nothing lost with the primary
        cart = gw.get("/cart", headers=user)
        assert cart.status_code == 200, cart.text
        assert [line["product_id"] for line in cart.json()["items"]] == ["oak-chair"]
    assert before in back["following"]
    print(
        f"\nRedis primary {before} killed: writes to its shard again after "
        f"{killed['writes_resumed_s']:.1f}s, {replica} leads; other shards: "
        f"{unaffected.read} reads, 0 failed; this shard: {len(affected.failed)} fast 503s "
        f"of {affected.read} reads; {before} back as a replica"
    )
