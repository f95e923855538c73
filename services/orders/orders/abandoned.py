"""Attempts that will never become orders give back the stock they may hold: a checkout
that failed after (or while) reserving, or a hold taken over by a newer attempt. Recorded
in `abandoned_attempts` in the same transaction that gave up the hold, then released in
cart (idempotent; releasing an order id cart never saw closes it there, so a reservation
still on its way takes nothing) by a loop that survives cart being away."""

from __future__ import annotations

import logging
import uuid

from prometheus_client import Counter

from kit import Postgres
from kit.db import Repeating
from orders.cart_client import CartClient
from orders.errors import ReservationClosed
from orders.idempotency import IdempotencyKeys

log = logging.getLogger("orders.abandoned")

RELEASED = Counter(
    "checkout_attempts_released_total", "Abandoned checkout attempts whose stock was released."
)


class AbandonedAttempts:
    BATCH = 50

    def __init__(
        self, *, db: Postgres, keys: IdempotencyKeys, cart: CartClient, interval_seconds: float
    ) -> None:
        self.db = db
        self.keys = keys
        self.cart = cart
        self._rounds = Repeating(
            db, self._round, idle_seconds=interval_seconds, name="abandoned attempts"
        )

    async def start(self) -> None:
        await self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()

    async def _round(self) -> bool:
        await self.keys.abandon_stale(limit=self.BATCH)
        async with self.db.connection() as conn:
            cursor = await conn.execute(
                "SELECT order_id FROM abandoned_attempts ORDER BY abandoned_at LIMIT %s",
                (self.BATCH,),
            )
            attempts = [row[0] for row in await cursor.fetchall()]
        for attempt in attempts:
            await self.release(attempt)
        return len(attempts) >= self.BATCH

    async def release(self, attempt: uuid.UUID) -> None:
        """Release one abandoned attempt's stock and forget it; raises if cart is away
        (the row stays, and a later round tries again)."""
        try:
            await self.cart.release(order_id=attempt)
        except ReservationClosed:
            # SOLD: only an order commits stock, and an abandoned attempt has none.
            log.error("an abandoned attempt's stock was sold", extra={"order": str(attempt)})
        async with self.db.connection() as conn:
            await conn.execute("DELETE FROM abandoned_attempts WHERE order_id = %s", (attempt,))
        RELEASED.inc()
