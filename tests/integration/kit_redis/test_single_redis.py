"""The same service code with one Redis (REDIS_URL, the small machine's mode): carts, the
product cache with its hash-tagged keys and its evictions, the login limiter's scripts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from auth.config import AuthSettings
from auth.errors import TooManyAttempts
from auth.ratelimit import LoginLimiter
from cart.cart_store import CartStore
from cart.config import CartSettings
from cart.local_copies import LocalCopies
from cart.product_cache import ProductCache
from cart.schemas import Product
from kit import Redis
from tests.integration.kit_redis.local_cluster import LocalRedis, eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def redis_kit(single_redis: LocalRedis) -> AsyncIterator[Redis]:
    component = Redis(CartSettings(redis_url=single_redis.url))
    assert type(component.client) is aioredis.Redis
    yield component
    await component.stop()


async def test_carts_and_readiness(redis_kit: Redis) -> None:
    await redis_kit.check()
    carts = CartStore(redis_kit.client, ttl_seconds=600)
    user = str(uuid.uuid4())
    assert await carts.set_quantity(user, "oak-desk", 2) == {"oak-desk": 2}
    assert await carts.remove(user, "oak-desk") == {}
    await carts.set_quantity(user, "oak-desk", 1)
    await carts.clear(user)
    assert await carts.lines(user) == {}


async def test_the_product_cache_fills_evicts_and_is_heard(redis_kit: Redis) -> None:
    product = Product(
        id=f"single-{uuid.uuid4().hex[:8]}", name="Single", description="",
        price_cents=1000, currency="EUR", stock=3,
    )  # fmt: skip
    copies = LocalCopies(redis_kit.client, ttl_seconds=60)
    await copies.start()
    try:
        cache = ProductCache(redis_kit.client, ttl_seconds=30, local=copies)
        await eventually(lambda: copies.subscribed, within=5, what="the subscription")
        assert await cache.get(product.id) is None
        await cache.put(product)
        assert await redis_kit.client.get(f"cart:product:{{{product.id}}}") is not None
        assert await cache.get(product.id) == product  # from Redis, now kept locally
        assert copies.get(product.id) == product
        await ProductCache(redis_kit.client, ttl_seconds=30).evict(product.id)
        await eventually(lambda: copies.get(product.id) is None, within=2, what="the eviction")
        assert await cache.get(product.id) is None
    finally:
        await copies.stop()


async def test_login_limits(single_redis: LocalRedis, redis_kit: Redis) -> None:
    settings = AuthSettings(redis_url=single_redis.url, login_failures_per_account=2)
    limiter = LoginLimiter(redis_kit.client, settings)
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    await limiter.take_failure_slot(email)
    await limiter.take_failure_slot(email)
    with pytest.raises(TooManyAttempts) as refused:
        await limiter.take_failure_slot(email)
    assert 0 < refused.value.retry_after_seconds <= settings.login_failure_window_seconds
    await limiter.give_back(email)
    await limiter.clear(email)
    await limiter.take_failure_slot(email)
