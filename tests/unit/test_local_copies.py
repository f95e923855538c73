"""The product cache's per-instance copies: kept only while subscribed to evictions,
never kept when an eviction overtook the read, and never older than their TTL."""

import time

import pytest

from cart.local_copies import LocalCopies
from cart.schemas import Product

pytestmark = pytest.mark.unit


def product(price_cents: int = 1000) -> Product:
    return Product(
        id="oak-desk",
        name="Oak Desk",
        description="",
        price_cents=price_cents,
        currency="EUR",
        stock=3,
    )


def subscribed(ttl_seconds: float = 60) -> LocalCopies:
    copies = LocalCopies(None, ttl_seconds=ttl_seconds)  # type: ignore[arg-type]  # no Redis here
    copies.subscribed = True
    return copies


def test_a_copy_read_with_no_eviction_since_is_served() -> None:
    copies = subscribed()
    since = copies.generation
    copies.keep(product(), read_since=since)
    assert copies.get("oak-desk") == product()


def test_an_eviction_that_overtook_the_read_keeps_the_old_row_out() -> None:
    copies = subscribed()
    since = copies.generation  # the read from Redis begins
    copies.drop(["oak-desk"])  # another instance's update is heard meanwhile
    copies.keep(product(1000), read_since=since)  # the read returns the old row
    assert copies.get("oak-desk") is None


def test_an_eviction_drops_the_copy() -> None:
    copies = subscribed()
    copies.keep(product(), read_since=copies.generation)
    copies.drop(["oak-desk", "pine-shelf"])
    assert copies.get("oak-desk") is None


def test_nothing_is_kept_or_served_while_not_subscribed() -> None:
    copies = subscribed()
    copies.keep(product(), read_since=copies.generation)
    copies._drop_all()  # the subscription is lost
    assert copies.get("oak-desk") is None
    copies.keep(product(), read_since=copies.generation)
    copies.subscribed = True
    assert copies.get("oak-desk") is None


def test_a_copy_expires_after_its_ttl() -> None:
    copies = subscribed(ttl_seconds=0.05)
    copies.keep(product(), read_since=copies.generation)
    assert copies.get("oak-desk") is not None
    time.sleep(0.06)
    assert copies.get("oak-desk") is None
