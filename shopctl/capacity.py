"""`make capacity`: the highest checkout rate this machine sustains with POST-to-CONFIRMED
p99 <= 500 ms and no errors, found by stepping an open-loop load.

Open loop: checkouts arrive at a constant rate whether or not earlier ones are done, as
shoppers do, so a slow shop shows as growing latency instead of being hidden by clients
that wait before they send again (the closed loop of `make bench-checkout` and of Locust's
users). Locust has no open-loop mode, so arrivals are scheduled here with asyncio; each is
one shopper's PUT /cart/items and POST /orders through the gateway. POST-to-CONFIRMED is
read afterwards from the order's own history (the time the saga confirmed it) against the
moment its POST was sent, on the same machine's clock, so no polling adds load while the
step runs.
"""

from __future__ import annotations

import asyncio
import os
import platform
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from shopctl.progress import say
from shopctl.readiness import wait_for_saga
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

P99_BOUND_S = 0.5
RATES = (2, 5, 10, 15, 20, 30, 40, 50, 60, 80, 100, 125, 150, 200)
SHOPPERS = 200  # each has one checkout in flight at most (one cart): rate x latency < this
STOCK = 1_000_000
LATE_S = 0.1  # an arrival sent later than this behind its schedule: the generator lags


@dataclass
class Step:
    rate: float
    duration_s: float
    sent: int = 0
    late: int = 0
    no_shopper: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0

    @property
    def held(self) -> bool:
        return (
            not self.errors
            and not self.no_shopper
            and self.late <= self.sent * 0.01
            and bool(self.latencies_s)
            and self.quantile(0.99) <= P99_BOUND_S
        )

    def line(self) -> str:
        return (
            f"{self.rate:6.0f}/s  {self.sent:6} sent  p50 {self.quantile(0.5) * 1000:6.0f} ms"
            f"  p99 {self.quantile(0.99) * 1000:6.0f} ms  errors {sum(self.errors.values()):4}"
            f"  late {self.late:4}  {'held' if self.held else 'MISSED ' + self._why()}"
        )

    def _why(self) -> str:
        reasons = [f"{k}: {v}" for k, v in sorted(self.errors.items())]
        if self.no_shopper:
            reasons.append(f"{self.no_shopper} arrivals found every shopper busy")
        if self.late > self.sent * 0.01:
            reasons.append(f"{self.late} arrivals sent late (the generator could not keep up)")
        if self.quantile(0.99) > P99_BOUND_S:
            reasons.append(f"p99 above {P99_BOUND_S * 1000:.0f} ms")
        return "; ".join(reasons)


@dataclass
class Shopper:
    client: httpx.AsyncClient
    auth: dict[str, str]


Placed = tuple[Shopper, str, float]  # who, the order's id, when its POST was sent


async def _checkout(shopper: Shopper, product: str, step: Step, placed: list[Placed]) -> None:
    """One arrival: a line in the cart, then the order. Records (order id, sent at)."""
    try:
        put = await shopper.client.put(
            f"/cart/items/{product}", json={"quantity": 1}, headers=shopper.auth
        )
        if put.status_code != 200:
            step.error(f"PUT cart {put.status_code}")
            return
        sent_at = time.time()
        answer = await shopper.client.post(
            "/orders",
            json={"payment_token": "tok_visa"},
            headers={**shopper.auth, "Idempotency-Key": str(uuid.uuid4())},
        )
        if answer.status_code != 202:
            step.error(f"POST /orders {answer.status_code}")
            return
        placed.append((shopper, answer.json()["id"], sent_at))
    except httpx.HTTPError as exc:
        step.error(type(exc).__name__)


async def _confirmed_at(shopper: Shopper, order_id: str, deadline: float) -> datetime | str:
    """When the saga confirmed the order, or the status it ended in (or stayed in)."""
    while True:
        detail = (await shopper.client.get(f"/orders/{order_id}", headers=shopper.auth)).json()
        if detail["status"] != "PENDING" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)
    for change in detail["history"]:
        if change["status"] == "CONFIRMED":
            return datetime.fromisoformat(change["at"])
    return str(detail["status"])


async def _step(shoppers: list[Shopper], products: list[str], rate: float, seconds: float) -> Step:
    step = Step(rate, seconds)
    free = asyncio.Queue[Shopper]()
    for shopper in shoppers:
        free.put_nowait(shopper)
    placed: list[Placed] = []
    running: set[asyncio.Task[None]] = set()

    async def arrival(n: int) -> None:
        shopper = free.get_nowait()
        try:
            await _checkout(shopper, products[n % len(products)], step, placed)
        finally:
            free.put_nowait(shopper)

    start = time.monotonic()
    for n in range(int(rate * seconds)):
        due = start + n / rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        step.sent += 1
        step.late += time.monotonic() - due > LATE_S
        if free.empty():
            step.no_shopper += 1
            continue
        task = asyncio.create_task(arrival(n))
        running.add(task)
        task.add_done_callback(running.discard)
    await asyncio.gather(*running)
    deadline = time.monotonic() + 30
    limit = asyncio.Semaphore(16)

    async def outcome(shopper: Shopper, order_id: str, sent_at: float) -> None:
        async with limit:
            confirmed = await _confirmed_at(shopper, order_id, deadline)
        if isinstance(confirmed, str):
            step.error(f"order ended {confirmed}")
        else:
            step.latencies_s.append(confirmed.timestamp() - sent_at)

    await asyncio.gather(*(outcome(*p) for p in placed))
    return step


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({model}), {memory_gib:.0f} GiB, "
        f"{platform.system()} {platform.release()}; the load generator shares the machine"
    )


async def _run(
    settings: Settings, step_seconds: float, rates: tuple[float, ...], count: int
) -> list[Step]:
    async with httpx.AsyncClient(base_url=gateway_url(settings), timeout=30) as admin:
        headers = await admin_headers(admin, settings)
        products = [p["id"] for p in (await admin.get("/products?limit=100")).json()["items"]]
        for product in products:
            await set_stock(admin, headers, product, STOCK)
    gate = asyncio.Semaphore(SIGN_INS_AT_ONCE)
    clients = [client_at(settings, address("capacity", n)) for n in range(count)]
    try:
        say(f"signing in {count} shoppers")
        auths = await asyncio.gather(
            *(sign_in(c, "capacity", address("capacity", n), gate) for n, c in enumerate(clients))
        )
        shoppers = [Shopper(c, a) for c, a in zip(clients, auths, strict=True)]
        for shopper in shoppers:
            await shopper.client.delete("/cart", headers=shopper.auth)
        steps: list[Step] = []

        async def measure(rate: float) -> Step:
            step = await _step(shoppers, products, rate, step_seconds)
            say(step.line())
            steps.append(step)
            await asyncio.sleep(3)  # let the saga's backlog of the step drain
            return step

        held = 0.0
        for rate in rates:
            if not (await measure(rate)).held:
                # Narrow the gap between the last rate held and the first missed.
                missed = rate
                while missed - held > max(2.0, held * 0.1):
                    middle = float(round((held + missed) / 2))
                    if (await measure(middle)).held:
                        held = middle
                    else:
                        missed = middle
                break
            held = rate
        return steps
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


def highest_held(steps: list[Step]) -> float:
    """The highest rate held below every rate missed (a noisy step may hold above one
    that missed; that is luck, not capacity)."""
    ceiling = min((s.rate for s in steps if not s.held), default=float("inf"))
    return max((s.rate for s in steps if s.held and s.rate < ceiling), default=0.0)


def capacity(
    settings: Settings,
    *,
    step_seconds: float = 20,
    rates: tuple[float, ...] = RATES,
    shoppers: int = SHOPPERS,
) -> tuple[float, list[Step]]:
    """The highest rate held (0 if none), and every step's figures."""
    say(
        f"Open-loop checkouts, {step_seconds:g}s a step, until POST-to-CONFIRMED p99 exceeds "
        f"{P99_BOUND_S * 1000:.0f} ms or anything fails"
    )
    wait_for_saga(settings)
    steps = asyncio.run(_run(settings, step_seconds, rates, shoppers))
    best = highest_held(steps)
    print(f"\nCheckout capacity: {best:g} orders/s sustained (p99 <= {P99_BOUND_S * 1000:.0f} ms,")
    print(f"no errors), on {machine()}")
    return best, steps
