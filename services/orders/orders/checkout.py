"""POST /orders: the caller's cart becomes an order in one step a client can repeat.

1. Hold the Idempotency-Key as a new attempt (or replay its stored answer); the attempt's
   id is the order id it reserves and records under (see `idempotency`).
2. Read the cart (server-side prices) and reserve exactly its lines in cart under the
   attempt's id; only a RESERVED answer holding those same lines goes on.
3. In ONE transaction, fenced by the hold: the order (PENDING), its lines and history, the
   `order.created` event in the outbox, and the stored answer. Then empty the cart and
   answer 202.

A refusal (empty cart, not enough stock) is an answer too, stored for the key. Any other
failure abandons the attempt: its hold is given up and its stock released, so the client's
retry starts a fresh attempt and never meets a stale reservation.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from prometheus_client import Counter

from kit import Postgres, ShopError
from kit.errors import PROBLEM_BASE
from kit.events import new_event
from kit.outbox import add_to_outbox
from orders import store
from orders.abandoned import AbandonedAttempts
from orders.cart_client import CartClient, CartSnapshot, ReservationLine
from orders.errors import (
    CheckoutInterrupted,
    EmptyCart,
    IdempotencyKeyRequired,
    OutOfStock,
    ReservationMismatch,
)
from orders.events import ORDER_EVENTS, OrderCreated
from orders.idempotency import Hold, IdempotencyKeys, request_hash, store_answer

log = logging.getLogger("orders.checkout")

MAX_KEY_LENGTH = 200

PLACED = Counter("orders_placed_total", "New orders acknowledged to clients with 202.")


class Checkout:
    def __init__(
        self,
        *,
        db: Postgres,
        keys: IdempotencyKeys,
        cart: CartClient,
        abandoned: AbandonedAttempts,
    ) -> None:
        self.db = db
        self.keys = keys
        self.cart = cart
        self.abandoned = abandoned

    async def place(
        self, *, user_id: str, authorization: str, key: str | None, payment_token: str
    ) -> tuple[int, dict[str, Any]]:
        if not key or len(key) > MAX_KEY_LENGTH:
            raise IdempotencyKeyRequired(
                f"Send an Idempotency-Key header: any unique string of 1 to {MAX_KEY_LENGTH} "
                "characters."
            )
        held = await self.keys.claim(
            user_id=uuid.UUID(user_id),
            key=key,
            digest=request_hash({"payment_token": payment_token}),
        )
        if not isinstance(held, Hold):
            return held  # the stored answer, replayed
        try:
            return await self._place(held, authorization, payment_token)
        except ShopError as exc:
            if exc.status >= 500:
                await self._abandon(held)
                raise
            await self._store_refusal(held, exc)
            raise
        except BaseException:
            await self._abandon(held)
            raise

    async def _place(
        self, hold: Hold, authorization: str, payment_token: str
    ) -> tuple[int, dict[str, Any]]:
        cart = await self.cart.read(authorization=authorization)
        if not cart.items:
            raise EmptyCart("The cart is empty; add products before checking out.")
        lines = [ReservationLine(product_id=i.product_id, quantity=i.quantity) for i in cart.items]
        try:
            reservation = await self.cart.reserve(order_id=hold.attempt, lines=lines)
        except ReservationMismatch as exc:
            raise CheckoutInterrupted(str(exc)) from exc
        if reservation.status == "REJECTED":
            names = ", ".join(
                f"{line.product_id} ({line.available} left)" for line in reservation.lacking
            )
            raise OutOfStock(
                f"Not enough stock for: {names}.",
                lacking=[line.model_dump() for line in reservation.lacking],
            )
        if reservation.status != "RESERVED" or sorted(reservation.lines, key=_product) != sorted(
            lines, key=_product
        ):
            # Released under us (the attempt was overtaken): never record an order over
            # stock it does not hold.
            raise CheckoutInterrupted(
                "This checkout was overtaken by a newer attempt; send it again."
            )
        body = await self._record(hold, cart, payment_token)
        PLACED.inc()
        try:
            await self.cart.clear(authorization=authorization)
        except ShopError:
            log.warning("could not empty the cart after checkout", extra={"order": body["id"]})
        return 202, body

    async def _record(self, hold: Hold, cart: CartSnapshot, token: str) -> dict[str, Any]:
        order_id = hold.attempt
        async with self.db.connection() as conn, conn.transaction():
            created_at: datetime = await store.insert_order(
                conn, order_id=order_id, user_id=hold.user_id, cart=cart, payment_token=token
            )
            body = {
                "id": str(order_id),
                "status": "PENDING",
                "items": [item.model_dump() for item in cart.items],
                "total_cents": cart.total_cents,
                "currency": cart.currency,
                "created_at": created_at.isoformat(),
            }
            created = OrderCreated(
                order_id=order_id,
                user_id=hold.user_id,
                total_cents=cart.total_cents,
                currency=cart.currency,
                payment_token=token,
            )
            await add_to_outbox(
                conn,
                topic=ORDER_EVENTS,
                event=new_event(created, key=str(order_id), producer="orders"),
            )
            await store_answer(conn, hold, status_code=202, body=body)
        return body

    async def _store_refusal(self, hold: Hold, exc: ShopError) -> None:
        """The same request gets the same refusal again; if it cannot be stored, the
        attempt is abandoned instead and a retry asks afresh."""
        body = {
            "type": PROBLEM_BASE + exc.type,
            "title": exc.title,
            "status": exc.status,
            "detail": exc.detail,
            **exc.extensions,
        }
        try:
            async with self.db.connection() as conn, conn.transaction():
                await store_answer(conn, hold, status_code=exc.status, body=body)
        except Exception:
            await self._abandon(hold)
            raise

    async def _abandon(self, hold: Hold) -> None:
        """Best effort: what fails here is finished by the abandoned-attempts loop (a
        stale hold is abandoned there too)."""
        try:
            if await self.keys.abandon(hold):
                await self.abandoned.release(hold.attempt)
        except Exception as exc:
            log.warning(
                "abandoning a checkout attempt deferred",
                extra={"order": str(hold.attempt), "error": repr(exc)},
            )


def _product(line: ReservationLine) -> str:
    return line.product_id
