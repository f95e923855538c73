"""orders' half of the checkout saga: payment outcomes close orders (stock sold or
released in cart, then CONFIRMED or CANCELLED), and orders still PENDING after the saga
timeout ask for their payment again, so no order is stranded by a lost event.

cart refusing the close (the reservation is gone or went the other way) is permanent: the
order is CANCELLED at once with the reason, and a paid one asks payments for a refund
(`order.cancelled` with `refund`). cart being away is transient: the consumer retries.
"""

from __future__ import annotations

import logging
import uuid

from prometheus_client import Counter, Histogram
from psycopg import AsyncConnection

from kit import Postgres
from kit.db import Repeating
from kit.events import Event, new_event
from kit.outbox import add_to_outbox
from orders import store
from orders.cart_client import CartClient
from orders.errors import ReservationClosed
from orders.events import (
    ORDER_EVENTS,
    OrderCancelled,
    PaymentFailed,
    PaymentRequested,
    PaymentSucceeded,
)

log = logging.getLogger("orders.saga")

OUTCOMES = Counter("saga_outcomes_total", "Orders closed, by outcome.", ["outcome"])
COMPLETION = Histogram(
    "order_completion_seconds",
    "From the checkout's 202 to CONFIRMED or CANCELLED, by outcome.",
    ["outcome"],
    buckets=(0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)
REDRIVEN = Counter("orders_redriven_total", "PENDING orders that asked for payment again.")

# The reason a paid order is cancelled when its stock is no longer held for it.
STOCK_NOT_HELD = "stock_not_held"


class PaymentOutcomes:
    def __init__(self, *, cart: CartClient) -> None:
        self.cart = cart

    async def handle(self, conn: AsyncConnection, event: Event) -> None:
        if event.type == PaymentSucceeded.event_type:
            paid = event.parse(PaymentSucceeded)
            await self._close(conn, paid.order_id, paid=True, reason=None)
        elif event.type == PaymentFailed.event_type:
            failed = event.parse(PaymentFailed)
            await self._close(conn, failed.order_id, paid=False, reason=failed.reason)

    async def _close(
        self, conn: AsyncConnection, order_id: uuid.UUID, *, paid: bool, reason: str | None
    ) -> None:
        if await store.lock_pending_status(conn, order_id) != "PENDING":
            return  # already closed; a duplicate outcome changes nothing
        try:
            # Idempotent in cart; if this transaction fails, the redelivered event repeats it.
            if paid:
                await self.cart.commit(order_id=order_id)
            else:
                await self.cart.release(order_id=order_id)
        except ReservationClosed as exc:
            log.error(
                "cart refused to close the order", extra={"order": str(order_id), "error": str(exc)}
            )
            if paid:
                await self._cancel(conn, order_id, reason=STOCK_NOT_HELD, refund=True)
                return
            # Unpaid, so it ends CANCELLED all the same; verify reports the stock's state.
        if paid:
            took = await store.finish_order(conn, order_id, status="CONFIRMED", reason=None)
            OUTCOMES.labels("confirmed").inc()
            COMPLETION.labels("confirmed").observe(took)
        else:
            await self._cancel(conn, order_id, reason=reason or "payment failed", refund=False)

    async def _cancel(
        self, conn: AsyncConnection, order_id: uuid.UUID, *, reason: str, refund: bool
    ) -> None:
        took = await store.finish_order(conn, order_id, status="CANCELLED", reason=reason)
        cancelled = OrderCancelled(order_id=order_id, reason=reason, refund=refund)
        await add_to_outbox(
            conn,
            topic=ORDER_EVENTS,
            event=new_event(cancelled, key=str(order_id), producer="orders"),
        )
        OUTCOMES.labels("cancelled").inc()
        COMPLETION.labels("cancelled").observe(took)


class Redrive:
    BATCH = 100

    def __init__(self, *, db: Postgres, timeout_seconds: float, interval_seconds: float) -> None:
        self.db = db
        self.timeout_seconds = timeout_seconds
        self._rounds = Repeating(db, self._round, idle_seconds=interval_seconds, name="re-drive")

    async def start(self) -> None:
        await self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()

    async def _round(self) -> bool:
        return await self.redrive_once() >= self.BATCH

    async def redrive_once(self) -> int:
        async with self.db.connection() as conn, conn.transaction():
            overdue = await store.claim_overdue(
                conn, older_than_seconds=self.timeout_seconds, limit=self.BATCH
            )
            for order in overdue:
                again = PaymentRequested(
                    order_id=order["id"],
                    user_id=order["user_id"],
                    total_cents=order["total_cents"],
                    currency=order["currency"],
                    payment_token=order["payment_token"],
                )
                await add_to_outbox(
                    conn,
                    topic=ORDER_EVENTS,
                    event=new_event(again, key=str(order["id"]), producer="orders"),
                )
        REDRIVEN.inc(len(overdue))
        return len(overdue)
