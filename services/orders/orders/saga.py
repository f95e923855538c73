"""orders' half of the checkout saga: payment outcomes close orders (stock sold or
released in cart, then CONFIRMED or CANCELLED), and orders still PENDING after the saga
timeout ask for their payment again, so no order is stranded by a lost event."""

from __future__ import annotations

import logging
import uuid

from prometheus_client import Counter
from psycopg import AsyncConnection

from kit import DependencyUnavailable, Postgres
from kit.db import Repeating
from kit.events import Event
from kit.outbox import add_to_outbox
from kit.service_client import ServiceClient
from orders import store
from orders.events import ORDER_EVENTS, PAYMENT_FAILED, PAYMENT_REQUESTED, PAYMENT_SUCCEEDED

log = logging.getLogger("orders.saga")

OUTCOMES = Counter("saga_outcomes_total", "Orders closed, by outcome.", ["outcome"])
REDRIVEN = Counter("orders_redriven_total", "PENDING orders that asked for payment again.")


class PaymentOutcomes:
    def __init__(self, *, services: ServiceClient) -> None:
        self.services = services

    async def handle(self, conn: AsyncConnection, event: Event) -> None:
        if event.type not in (PAYMENT_SUCCEEDED, PAYMENT_FAILED):
            return
        order_id = uuid.UUID(event.key)
        if await store.lock_pending_status(conn, order_id) != "PENDING":
            return  # already closed; a duplicate outcome changes nothing
        succeeded = event.type == PAYMENT_SUCCEEDED
        action = "commit" if succeeded else "release"
        # Idempotent in cart; if this transaction fails, the redelivered event repeats it.
        response = await self.services.request(
            "cart", "POST", f"/internal/reservations/{order_id}/{action}", idempotent=True
        )
        if response.status_code != 200:
            raise DependencyUnavailable("cart")
        status = "CONFIRMED" if succeeded else "CANCELLED"
        reason = None if succeeded else str(event.data.get("reason", "payment failed"))
        await store.finish_order(conn, order_id, status=status, reason=reason)
        OUTCOMES.labels(status.lower()).inc()


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
                event = Event(
                    type=PAYMENT_REQUESTED,
                    key=str(order["id"]),
                    producer="orders",
                    data={
                        "order_id": str(order["id"]),
                        "user_id": str(order["user_id"]),
                        "total_cents": order["total_cents"],
                        "currency": order["currency"],
                        "payment_token": order["payment_token"],
                    },
                )
                await add_to_outbox(conn, topic=ORDER_EVENTS, event=event)
        REDRIVEN.inc(len(overdue))
        return len(overdue)
