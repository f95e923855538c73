"""What the platform's rows need before wrk starts: the product read is cached and answers
200, its stock allows the write, and shoppers are signed in for the write's tokens."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from shopctl.progress import StackError, say
from shopctl.shoppers import (
    SIGN_INS_AT_ONCE,
    address,
    admin_headers,
    client_at,
    gateway_url,
    set_stock,
    sign_in,
)
from shopctl.topology import Settings

PRODUCT = "oak-desk"
READ_PATH = f"/products/{PRODUCT}"
WRITE_PATH = f"/cart/items/{PRODUCT}"
WRITE_BODY = '{"quantity": 1}'
SHOPPERS = 32
# The write asks for 1 unit; a product sold out by earlier runs would answer 409s.
MIN_STOCK, STOCK = 1_000, 1_000_000
RESTART_WAIT_S = 30


async def _product(client: httpx.AsyncClient) -> dict[str, Any]:
    """The product, waiting out a cart instance being restarted (the gateway's 502 or 503
    for a few seconds): a run should not fail in its set-up for that."""
    deadline = time.monotonic() + RESTART_WAIT_S
    while True:
        try:
            answer = await client.get(READ_PATH)
        except httpx.TransportError as exc:
            raise StackError(
                f"the gateway at {client.base_url} does not answer ({exc!r}); is the stack up? "
                "(make up)"
            ) from exc
        if answer.status_code not in (502, 503, 504) or time.monotonic() > deadline:
            answer.raise_for_status()
            product: dict[str, Any] = answer.json()
            return product
        await asyncio.sleep(1)


async def _prepare(settings: Settings, shoppers: int) -> list[str]:
    async with httpx.AsyncClient(base_url=gateway_url(settings), timeout=30) as admin:
        if (await _product(admin))["stock"] < MIN_STOCK:
            await set_stock(admin, await admin_headers(admin, settings), PRODUCT, STOCK)
            await _product(admin)  # the cache holds it again before the read is measured
    gate = asyncio.Semaphore(SIGN_INS_AT_ONCE)
    sources = [address("bench", n) for n in range(shoppers)]
    clients = [client_at(settings, source) for source in sources]
    try:
        auths = await asyncio.gather(
            *(sign_in(c, "bench", s, gate) for c, s in zip(clients, sources, strict=True))
        )
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    return [auth["Authorization"].removeprefix("Bearer ") for auth in auths]


def prepare(settings: Settings, shoppers: int = SHOPPERS) -> list[str]:
    """The access tokens of `shoppers` signed-in shoppers (valid 15 minutes)."""
    return asyncio.run(_prepare(settings, shoppers))


async def _empty_carts(settings: Settings, tokens: list[str]) -> None:
    async with httpx.AsyncClient(base_url=gateway_url(settings), timeout=30) as client:
        for token in tokens:
            try:
                await client.delete("/cart", headers={"Authorization": f"Bearer {token}"})
            except httpx.HTTPError as exc:
                # Tidying only: a bench account's cart left full harms nothing.
                say(f"could not empty a bench shopper's cart: {exc!r}")
                return


def empty_carts(settings: Settings, tokens: list[str]) -> None:
    """Leave the shoppers' carts as they were before the write filled them."""
    asyncio.run(_empty_carts(settings, tokens))
