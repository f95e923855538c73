"""The shared Redis: one server (`REDIS_URL`) or a Redis Cluster (`REDIS_CLUSTER_NODES`),
through redis-py's asyncio clients with bounded socket timeouts. Callers see the same
commands and the same `RedisError`s in both modes; keys a script or a command uses
together share a hash tag, so they live on one node of a cluster."""

from __future__ import annotations

import asyncio
from typing import TypeAlias

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from kit.redis_cluster import cluster_client
from kit.settings import ServiceSettings

RedisClient: TypeAlias = aioredis.Redis | RedisCluster


class Redis:
    name = "redis"

    def __init__(self, settings: ServiceSettings, *, critical: bool = True) -> None:
        self.critical = critical
        # Connecting is lazy in both modes, so a Redis that is down does not stop the
        # instance starting.
        if settings.redis_startup_nodes:
            self.client: RedisClient = cluster_client(settings)
        elif settings.redis_url:
            self.client = _single_client(settings.redis_url, settings.dependency_timeout_seconds)
        else:
            raise ValueError(
                "REDIS_URL or REDIS_CLUSTER_NODES is required for a service that uses Redis"
            )
        self.key_prefix = f"{settings.service_name}:"

    async def start(self) -> None:
        return None

    async def check(self) -> None:
        if isinstance(self.client, RedisCluster):
            await _cluster_answers(self.client)
        else:
            await self.client.ping()

    async def stop(self) -> None:
        await self.client.aclose()


def _single_client(url: str, timeout: float) -> aioredis.Redis:
    return aioredis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=10,
        # A pooled connection to a Redis that has since restarted fails on first use:
        # reconnect and try once more at once. redis-py retries only the errors listed
        # here; a Redis that is really away still fails fast, after two attempts.
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[RedisConnectionError],
        decode_responses=True,
    )


async def _cluster_answers(client: RedisCluster) -> None:
    """A cluster is ready while its slot map is known and any primary answers.

    Not "every shard answers": each instance reaches the same shards, so one shard
    down would take every instance out of the gateway at once, and with them the
    calls on the healthy shards too. A call on the dead shard fails fast on its own
    (a 503) until its replica is promoted. No primary answering means no write can
    succeed anywhere, and no replica can be promoted (that takes a majority of the
    primaries' votes): not ready."""
    await client.initialize()
    primaries = client.get_primaries()
    answers = await asyncio.gather(
        *(client.ping(target_nodes=node) for node in primaries), return_exceptions=True
    )
    if not any(answer is True for answer in answers):
        errors = sorted({repr(answer) for answer in answers})
        raise RedisConnectionError(f"no Redis Cluster primary answers: {', '.join(errors)}")
