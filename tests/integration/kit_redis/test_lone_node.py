"""REPLICAS=1 runs Redis as a cluster of one node: a real redis-server with the config
local mode renders for it, formed by shopctl as `make up` does, must be seen as complete
and serve carts through the services' cluster client (a lone node that never met another
gave no address of its own in the slot map, and `make up` waited for it in vain)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from cart.cart_store import CartStore
from cart.config import CartSettings
from kit import Redis
from shopctl import redis_cluster, render
from shopctl.topology import RedisNode, Settings, Topology, read_env_file
from tests.integration.kit_redis.local_cluster import free_ports, until

pytestmark = pytest.mark.integration


@pytest.fixture
def lone_node(tmp_path: Path) -> Iterator[RedisNode]:
    port, bus = free_ports(2)
    node = RedisNode(1, "127.0.0.1", port, port, bus)
    topology = Topology("local", Settings({**read_env_file(), "REPLICAS": "1"}))
    (tmp_path / "data").mkdir()
    conf = tmp_path / "redis.conf"
    conf.write_text(render.redis_conf(topology, node, tmp_path / "data"))
    process = subprocess.Popen(
        ["/usr/bin/redis-server", str(conf)], stdout=subprocess.DEVNULL, start_new_session=True
    )
    try:
        until(lambda: redis_cluster.answers(node), within=10, what="the lone node answering")
        yield node
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_a_cluster_of_one_node_is_formed_complete_and_serves_carts(
    lone_node: RedisNode,
) -> None:
    nodes = [lone_node]
    redis_cluster.create(nodes)
    assert redis_cluster.formed(nodes)
    until(lambda: redis_cluster.complete(nodes), within=10, what="the cluster complete")
    (view,) = redis_cluster.view(nodes).values()
    assert (view.name, view.primary, view.slots) == ("redis-1", True, redis_cluster.SLOTS)
    assert redis_cluster.primary_of_slot(nodes, 12_345) == lone_node

    address = f"{lone_node.host}:{lone_node.port}"
    component = Redis(CartSettings(redis_cluster_nodes=address, redis_address_map=""))
    try:
        carts = CartStore(component.client, ttl_seconds=60)
        assert await carts.set_quantity("lone-shopper", "oak-desk", 2) == {"oak-desk": 2}
        assert await carts.lines("lone-shopper") == {"oak-desk": 2}
    finally:
        await component.stop()
    with redis.Redis(host=lone_node.host, port=lone_node.port) as direct:
        assert direct.exists(CartStore.key("lone-shopper"))
