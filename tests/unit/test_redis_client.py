"""The kit picks the Redis client the settings ask for, set up for failing fast, and maps
every address a cluster node announces: in the slot map and in MOVED redirects."""

import logging

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode
from redis.exceptions import MovedError

from kit import Redis, ServiceSettings
from kit.redis_cluster import ClusterClient, address_remap

pytestmark = pytest.mark.unit


def settings(**values: object) -> ServiceSettings:
    return ServiceSettings(service_name="unit", **values)  # type: ignore[arg-type]


async def test_redis_url_alone_gives_the_single_client() -> None:
    component = Redis(settings(redis_url="redis://127.0.0.1:16379/0"))
    assert type(component.client) is aioredis.Redis
    await component.stop()


async def test_cluster_nodes_give_the_cluster_client_even_with_a_redis_url() -> None:
    component = Redis(
        settings(
            redis_url="redis://127.0.0.1:16379/0",
            redis_cluster_nodes="redis-1:6379,127.0.0.1:27002",
            redis_address_map="redis-1:6379=127.0.0.1:27001",
            dependency_timeout_seconds=0.5,
        )
    )
    client = component.client
    assert isinstance(client, ClusterClient)
    # The configured nodes go through the map as well.
    assert sorted(client.nodes_manager.startup_nodes) == ["127.0.0.1:27001", "127.0.0.1:27002"]
    assert client.deadline_seconds == 1.0
    assert client.retry.get_retries() == 1
    assert client.connection_kwargs["max_connections"] == 1000
    assert client.reinitialize_steps == 0
    assert client.nodes_manager.require_full_coverage is False
    assert client.connection_kwargs["socket_timeout"] == 0.5
    assert client.connection_kwargs["socket_connect_timeout"] == 0.5
    await component.stop()


def test_a_service_using_redis_needs_one_of_the_two() -> None:
    with pytest.raises(ValueError, match="REDIS_URL or REDIS_CLUSTER_NODES is required"):
        Redis(settings())


def test_the_remap_maps_announced_addresses_and_warns_once_about_unmapped_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    remap = address_remap({("redis-1", 6379): ("127.0.0.1", 27001)})
    caplog.set_level(logging.WARNING, logger="kit.redis")
    assert remap(("REDIS-1", 6379)) == ("127.0.0.1", 27001)
    # An address already a proxy's is what the nodes announce when they know their
    # proxies; not worth a warning.
    assert remap(("127.0.0.1", 27001)) == ("127.0.0.1", 27001)
    assert remap(("redis-9", 6379)) == ("redis-9", 6379)
    assert remap(("redis-9", 6379)) == ("redis-9", 6379)
    warned = [r for r in caplog.records if "not in REDIS_ADDRESS_MAP" in r.getMessage()]
    assert [r.__dict__["address"] for r in warned] == ["redis-9:6379"]


def test_with_no_map_every_address_is_itself_and_nothing_is_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="kit.redis")
    assert address_remap({})(("10.0.0.5", 6379)) == ("10.0.0.5", 6379)
    assert not caplog.records


async def test_a_moved_redirect_is_followed_to_the_mapped_address() -> None:
    # redis-py applies address_remap to the slot map but not to the address in a
    # MOVED redirect (redis-py #3382); the kit's client maps it too.
    client = Redis(
        settings(
            redis_cluster_nodes="127.0.0.1:27001",
            redis_address_map="redis-1:6379=127.0.0.1:27001,redis-2:6379=127.0.0.1:27002",
        )
    ).client
    assert isinstance(client, ClusterClient)
    manager = client.nodes_manager
    first = ClusterNode("127.0.0.1", 27001, "primary")
    manager.nodes_cache = {first.name: first}
    manager.slots_cache = {3999: [first]}
    await manager.move_slot(MovedError("3999 redis-2:6379"))
    assert [node.name for node in manager.slots_cache[3999]] == ["127.0.0.1:27002"]
    assert sorted(manager.nodes_cache) == ["127.0.0.1:27001", "127.0.0.1:27002"]
    await client.aclose()
