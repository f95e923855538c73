"""The shared Redis, through redis-py's asyncio client with bounded socket timeouts."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from kit.settings import ServiceSettings


class Redis:
    name = "redis"

    def __init__(self, settings: ServiceSettings, *, critical: bool = True) -> None:
        self.critical = critical
        if not settings.redis_url:
            raise ValueError("REDIS_URL is required for a service that uses Redis")
        timeout = settings.dependency_timeout_seconds
        # Connecting is lazy, so a Redis that is down does not stop the instance starting.
        self.client: aioredis.Redis = aioredis.from_url(
            settings.redis_url,
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
        self.key_prefix = f"{settings.service_name}:"

    async def start(self) -> None:
        return None

    async def check(self) -> None:
        await self.client.ping()

    async def stop(self) -> None:
        await self.client.aclose()
