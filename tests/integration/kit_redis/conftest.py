"""The Redis servers these tests start themselves (no stack): one Redis Cluster and one
plain Redis, each started once and stopped by PID at the end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from cart.config import CartSettings
from kit import Redis
from tests.integration.kit_redis.local_cluster import LocalRedis, LocalRedisCluster


@pytest.fixture(autouse=True)
def fresh_login_budget() -> None:
    """The stack's fixture of that name, overridden: these tests start no stack."""


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    local = LocalRedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        local.start()
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="session")
def single_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedis]:
    local = LocalRedis(tmp_path_factory.mktemp("redis"))
    try:
        local.start()
        yield local
    finally:
        local.stop()


def cart_settings(cluster: LocalRedisCluster) -> CartSettings:
    return CartSettings(
        redis_cluster_nodes=cluster.startup_nodes, redis_address_map=cluster.address_map
    )


@pytest.fixture
async def redis_kit(cluster: LocalRedisCluster) -> AsyncIterator[Redis]:
    """The kit's Redis component on the cluster, with its slot map fetched."""
    # A test that changed the cluster put it back; wait until it is whole again.
    await asyncio.to_thread(cluster.wait_until_healthy)
    component = Redis(cart_settings(cluster))
    await component.client.initialize()
    yield component
    await component.stop()
