"""`make flash-sale`: many buyers check out the last units of one product at the same
moment. Exactly the stock is sold: as many checkouts are accepted as there are units,
every other one is refused with 409 at once, every accepted order ends CONFIRMED, the
product is left with none, the saga's Kafka lag rises and drains, and `make verify` holds.

Each buyer has a loopback address and an account of its own (shopctl/shoppers.py).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx

from shopctl.progress import StackError, say
from shopctl.readiness import SAGA_GROUPS, wait_for_saga
from shopctl.shoppers import (
    SIGN_INS_AT_ONCE,
    address,
    admin_headers,
    client_at,
    gateway_url,
    set_stock,
    sign_in,
)
from shopctl.topology import Settings, Topology

PRODUCT = "oak-lamp"
RETRIES_ON_503 = 5  # logins hash a password; more at once only queue in auth


@dataclass
class Sale:
    buyers: int
    stock: int
    answers: dict[int, int] = field(default_factory=dict)  # status code -> count
    outcomes: dict[str, int] = field(default_factory=dict)  # order status -> count
    stock_left: int = -1
    shed: int = 0  # 503s answered first, each retried after Retry-After with the same key
    peak_lag: int = 0
    lag_samples_missed: int = 0
    last_lag: int | None = None  # the last sample, which says why a drain was not seen
    drained_after_s: float | None = None

    @property
    def problems(self) -> list[str]:
        found = []
        accepted, refused = self.answers.get(202, 0), self.answers.get(409, 0)
        if accepted != self.stock:
            found.append(f"{accepted} checkouts accepted for {self.stock} units")
        if refused != self.buyers - self.stock:
            found.append(f"{refused} refused with 409, not {self.buyers - self.stock}")
        others = {code: n for code, n in self.answers.items() if code not in (202, 409)}
        if others:
            found.append(f"other answers: {others}")
        if self.outcomes.get("CONFIRMED", 0) != accepted:
            found.append(f"accepted orders ended {self.outcomes}")
        if self.stock_left != 0:
            found.append(f"{self.stock_left} units left, not 0")
        if self.peak_lag == 0:
            found.append("the saga's Kafka lag never rose: was the sale seen at all?")
        if self.drained_after_s is None:
            found.append("the saga's Kafka lag did not drain")
        return found


class LagWatch:
    """Samples the saga's lag in a thread until stopped: its peak, and when it drained."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.samples: list[tuple[float, int]] = []
        self.missed = 0  # samples the broker did not answer in time
        self.settled = 0.0  # when every accepted order had ended; set by the sale
        self.drained = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> LagWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _watch(self) -> None:
        from shopctl.kafka_admin import uncommitted

        while not self._stop.is_set():
            try:
                waiting = uncommitted(self.bootstrap, SAGA_GROUPS)
            except TimeoutError:
                # A late answer from a broker busy with the sale is a missed sample; an
                # exception here would end the watch, and the drain would never be seen.
                self.missed += 1
            else:
                self.samples.append((time.monotonic(), waiting))
                if self.settled and waiting == 0:
                    self.drained.set()
            self._stop.wait(0.1)

    def drained_at(self) -> float | None:
        """The first moment, once every order had ended, that no saga record was waiting.
        (The lag comes in waves, orders' events then payments', so a zero between them
        is not the end.)"""
        after = [at for at, lag in self.samples if at >= self.settled and lag == 0]
        return after[0] if self.settled and after else None


async def _buyer(
    settings: Settings, n: int, gate: asyncio.Semaphore, doors: asyncio.Barrier
) -> tuple[int, str | None, str, int]:
    """(final answer to the checkout, the order's id, its final status, 503s before it)."""
    source = address("flash", n)
    async with client_at(settings, source) as client:
        auth = await sign_in(client, "flash", source, gate)
        await client.delete("/cart", headers=auth)
        put = await client.put(f"/cart/items/{PRODUCT}", json={"quantity": 1}, headers=auth)
        put.raise_for_status()
        key, busy = str(uuid.uuid4()), 0
        await doors.wait()  # every buyer checks out at the same moment
        while True:
            placed = await client.post(
                "/orders",
                json={"payment_token": "tok_visa"},
                headers={**auth, "Idempotency-Key": key},
            )
            if placed.status_code != 503 or busy == RETRIES_ON_503:
                break
            # The shop sheds load it cannot take in time; the contract is to come back
            # after Retry-After with the same key, which can never order twice.
            busy += 1
            await asyncio.sleep(float(placed.headers.get("retry-after", "1")))
        if placed.status_code != 202:
            await client.delete("/cart", headers=auth)
            return placed.status_code, None, "", busy
        order_id = placed.json()["id"]
        status, deadline = "PENDING", time.monotonic() + 60
        while status == "PENDING" and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            answer = await client.get(f"/orders/{order_id}", headers=auth)
            status = answer.json()["status"] if answer.status_code == 200 else status
        return 202, order_id, status, busy


async def _run_sale(settings: Settings, sale: Sale) -> None:
    async with httpx.AsyncClient(base_url=gateway_url(settings), timeout=30) as admin:
        await set_stock(admin, await admin_headers(admin, settings), PRODUCT, sale.stock)
        gate, doors = asyncio.Semaphore(SIGN_INS_AT_ONCE), asyncio.Barrier(sale.buyers + 1)
        buyers = [asyncio.create_task(_buyer(settings, n, gate, doors)) for n in range(sale.buyers)]
        with LagWatch(Topology("local", settings).kafka_bootstrap()) as lag:
            try:
                await asyncio.wait_for(doors.wait(), timeout=180)
            except TimeoutError:
                await asyncio.gather(*buyers)  # raises what kept a buyer from the door
                raise
            opened = time.monotonic()
            say(f"{sale.buyers} buyers with one {PRODUCT} in their carts: the sale is open")
            results = await asyncio.gather(*buyers)
            lag.settled = time.monotonic()
            await asyncio.to_thread(lag.drained.wait, 60)
        sale.peak_lag = max((n for at, n in lag.samples if at >= opened), default=0)
        drained_at = lag.drained_at()
        sale.drained_after_s = None if drained_at is None else drained_at - opened
        sale.lag_samples_missed = lag.missed
        sale.last_lag = lag.samples[-1][1] if lag.samples else None
        for code, _, status, busy in results:
            sale.shed += busy
            sale.answers[code] = sale.answers.get(code, 0) + 1
            if status:
                sale.outcomes[status] = sale.outcomes.get(status, 0) + 1
        sale.stock_left = (await admin.get(f"/products/{PRODUCT}")).json()["stock"]


def flash_sale(settings: Settings, *, buyers: int = 200, stock: int = 50) -> tuple[Sale, int]:
    """The sale's figures, and `make verify`'s exit status after it."""
    from shopctl.verify import report

    if not 0 < stock < buyers:
        raise StackError(f"a flash sale needs more buyers ({buyers}) than units ({stock}), >0")
    sale = Sale(buyers=buyers, stock=stock)
    wait_for_saga(settings)
    asyncio.run(_run_sale(settings, sale))
    accepted, refused = sale.answers.get(202, 0), sale.answers.get(409, 0)
    print(f"{sale.buyers} buyers, {sale.stock} units of {PRODUCT}:")
    print(f"  accepted (202): {accepted}   refused (409): {refused}   all answers: {sale.answers}")
    print(f"  503s answered first (retried with the same key after Retry-After): {sale.shed}")
    print(f"  accepted orders ended: {sale.outcomes}   units left: {sale.stock_left}")
    drained = (
        f"{sale.drained_after_s:.1f}s"
        if sale.drained_after_s is not None
        else f"not drained (last sample: {sale.last_lag})"
    )
    print(
        f"  saga lag: peak {sale.peak_lag} records, back to 0 after {drained}"
        f" ({sale.lag_samples_missed} samples unanswered)"
    )
    for problem in sale.problems:
        print(f"  FAIL  {problem}")
    print(f"\nFlash sale: {'FAIL' if sale.problems else 'PASS'}\n\nmake verify:")
    return sale, report(settings)
