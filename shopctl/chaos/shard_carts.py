"""Shoppers on every Redis shard reading their carts through the gateway while one shard's
primary dies: the evidence that only that shard's carts notice (the others must not).

Each shopper is a real account signed in from a loopback address of its own
(shopctl/shoppers.py); its cart lives on the shard whose primary serves the hash slot of
its cart key, found before the fault. A read is GET /cart, which touches that key alone.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import jwt
from redis.crc import key_slot

from cart.cart_store import CartStore
from shopctl import redis_cluster
from shopctl.shoppers import SIGN_INS_AT_ONCE, address, client_at, sign_in
from shopctl.topology import Topology

# Where the shoppers' addresses and accounts come from (shopctl/shoppers.py).
KIND = "failover"
# Accounts tried before giving up on a shard that none of them lands on.
MOST_ACCOUNTS = 60
PAUSE_S = 0.02
# A failure slower than this is a hang to a shopper, not a fast 503.
FAST_S = 3.0


def user_id(headers: dict[str, str]) -> str:
    """The account's id, from its token's claims (no need to check the signature here)."""
    token = headers["Authorization"].removeprefix("Bearer ")
    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


def shard_of(topology: Topology, key: str) -> str:
    primary = redis_cluster.primary_of_slot(topology.redis_nodes(), key_slot(key.encode()))
    if primary is None:
        raise RuntimeError(f"no Redis primary serves the slot of {key}")
    return primary.name


@dataclass
class Reads:
    count: int = 0
    # (status, Retry-After, seconds) of each read that was not a 200.
    failed: list[tuple[int, str | None, float]] = field(default_factory=list)


def describe(reads: dict[str, Any]) -> str:
    """Reads as the journal keeps them, e.g. "0 of 812 failed", or "12 of 300 failed
    (12 x 503 with Retry-After, the slowest in 0.03 s)"."""
    failed, count = reads["failed"], reads["count"]
    if not failed:
        return f"0 of {count} failed"
    honest = sum(1 for status, retry, _ in failed if status == 503 and retry)
    slowest = max(took for _, _, took in failed)
    return (
        f"{len(failed)} of {count} failed ({honest} x 503 with Retry-After, "
        f"the slowest in {slowest:.2f} s)"
    )


def not_honest(reads: dict[str, Any]) -> list[Any]:
    """Failed reads that were not a fast 503 with a Retry-After."""
    return [f for f in reads["failed"] if f[0] != 503 or not f[1] or f[2] >= FAST_S]


class ShardCarts:
    """`with ShardCarts(topology, per_shard=2) as carts:` signs in shoppers until every
    shard holds `per_shard` of their carts, then reads them over and over until the block
    ends; `carts.tally(shard)` splits the reads into that shard's and the others'."""

    def __init__(self, topology: Topology, per_shard: int = 2) -> None:
        self.topology, self.per_shard = topology, per_shard
        self.reads: dict[str, Reads] = {}
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="shard-carts", daemon=True)

    def __enter__(self) -> ShardCarts:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def tally(self, shard: str) -> dict[str, Any]:
        """{"shard": reads of carts on `shard`, "others": reads of all the others'}."""
        others = Reads()
        for name, reads in self.reads.items():
            if name != shard:
                others.count += reads.count
                others.failed += reads.failed
        return {"shard": asdict(self.reads.get(shard, Reads())), "others": asdict(others)}

    def _run(self) -> None:
        try:
            asyncio.run(self._shop())
        except BaseException as error:  # handed to the caller by __enter__
            self._error = error
        finally:
            self._ready.set()

    async def _shop(self) -> None:
        settings = self.topology.settings
        view = redis_cluster.view(self.topology.redis_nodes())
        shards = {name for name, node in view.items() if node.primary and node.slots}
        clients = []
        try:
            gate = asyncio.Semaphore(SIGN_INS_AT_ONCE)
            shoppers = []
            on_shard: Counter[str] = Counter()
            n = 0
            while any(on_shard[s] < self.per_shard for s in shards):
                if n == MOST_ACCOUNTS:
                    raise RuntimeError(f"{n} shoppers' carts did not reach every shard")
                source = address(KIND, n)
                n += 1
                client = client_at(settings, source)
                clients.append(client)
                headers = await sign_in(client, KIND, source, gate)
                shard = shard_of(self.topology, CartStore.key(user_id(headers)))
                on_shard[shard] += 1
                shoppers.append((shard, client, headers))
            self.reads = {shard: Reads() for shard in on_shard}
            self._ready.set()
            while not self._stop.is_set():
                for shard, client, headers in shoppers:
                    await self._read(client, headers, self.reads[shard])
                await asyncio.sleep(PAUSE_S)
        finally:
            for client in clients:
                await client.aclose()

    @staticmethod
    async def _read(client: httpx.AsyncClient, headers: dict[str, str], reads: Reads) -> None:
        started = time.monotonic()
        try:
            answer = await client.get("/cart", headers=headers)
            status, retry = answer.status_code, answer.headers.get("retry-after")
        except httpx.HTTPError:
            status, retry = 0, None
        reads.count += 1
        if status != 200:
            reads.failed.append((status, retry, time.monotonic() - started))
