"""POST /orders: the caller's cart becomes an order in one step a client can repeat.

1. Hold the Idempotency-Key (or replay its stored answer).
2. Read the cart (server-side prices) and reserve its stock in cart, idempotently per
   order id; the order id is derived from the user and the key, so a retried request
   asks for the same reservation again.
3. In ONE transaction: the order (PENDING), its lines and history, the `order.created`
   event in the outbox, and the stored answer. Then empty the cart and answer 202.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from kit import DependencyUnavailable, Postgres, ShopError
from kit.errors import PROBLEM_BASE
from kit.events import Event
from kit.outbox import add_to_outbox
from kit.service_client import ServiceClient
from orders import store
from orders.errors import EmptyCart, IdempotencyKeyRequired, OutOfStock
from orders.events import ORDER_CREATED, ORDER_EVENTS
from orders.idempotency import IdempotencyKeys, request_hash, store_answer

log = logging.getLogger("orders.checkout")

_ORDER_IDS = uuid.UUID("6f0d3c2e-5b1a-4c47-9a53-2f4e8b7d1c90")


class Checkout:
    def __init__(self, *, db: Postgres, keys: IdempotencyKeys, services: ServiceClient) -> None:
        self.db = db
        self.keys = keys
        self.services = services

    async def place(
        self, *, user_id: str, authorization: str, key: str | None, payment_token: str
    ) -> tuple[int, dict[str, Any]]:
        if not key:
            raise IdempotencyKeyRequired("Send an Idempotency-Key header (any unique string).")
        user = uuid.UUID(user_id)
        replay = await self.keys.claim(
            user_id=user, key=key, digest=request_hash({"payment_token": payment_token})
        )
        if replay is not None:
            return replay
        try:
            return await self._place(user, key, authorization, payment_token)
        except ShopError as exc:
            if exc.status >= 500:
                await self.keys.release(user_id=user, key=key)
                raise
            # A refusal is an answer too: the same request gets it again.
            body = {
                "type": PROBLEM_BASE + exc.type,
                "title": exc.title,
                "status": exc.status,
                "detail": exc.detail,
                **exc.extensions,
            }
            async with self.db.connection() as conn:
                await store_answer(conn, user_id=user, key=key, status_code=exc.status, body=body)
            raise
        except Exception:
            await self.keys.release(user_id=user, key=key)
            raise

    async def _place(
        self, user: uuid.UUID, key: str, authorization: str, payment_token: str
    ) -> tuple[int, dict[str, Any]]:
        auth = {"Authorization": authorization}
        cart = await self.services.request("cart", "GET", "/cart", headers=auth)
        if cart.status_code != 200:
            raise DependencyUnavailable("cart")
        content = cart.json()
        if not content["items"]:
            raise EmptyCart("The cart is empty; add products before checking out.")
        order_id = uuid.uuid5(_ORDER_IDS, f"{user}:{key}")
        lines = [
            {"product_id": i["product_id"], "quantity": i["quantity"]} for i in content["items"]
        ]
        reserved = await self.services.request(
            "cart",
            "POST",
            "/internal/reservations",
            json={"order_id": str(order_id), "lines": lines},
            idempotent=True,
        )
        if reserved.status_code == 404:
            raise OutOfStock("A product in the cart is no longer sold.", **reserved.json())
        if reserved.status_code != 200:
            raise DependencyUnavailable("cart")
        if reserved.json()["status"] != "RESERVED":
            lacking = reserved.json()["lacking"]
            names = ", ".join(
                f"{line['product_id']} ({line['available']} left)" for line in lacking
            )
            raise OutOfStock(f"Not enough stock for: {names}.", lacking=lacking)
        try:
            body = await self._record(order_id, user, key, content, payment_token)
        except Exception:
            await self.services.request(
                "cart", "POST", f"/internal/reservations/{order_id}/release", idempotent=True
            )
            raise
        try:
            await self.services.request("cart", "DELETE", "/cart", headers=auth)
        except ShopError:
            log.warning("could not empty the cart after checkout", extra={"order": str(order_id)})
        return 202, body

    async def _record(
        self, order_id: uuid.UUID, user: uuid.UUID, key: str, cart: dict[str, Any], token: str
    ) -> dict[str, Any]:
        async with self.db.connection() as conn, conn.transaction():
            created_at: datetime = await store.insert_order(
                conn, order_id=order_id, user_id=user, cart=cart, payment_token=token
            )
            body = {
                "id": str(order_id),
                "status": "PENDING",
                "items": cart["items"],
                "total_cents": cart["total_cents"],
                "currency": cart["currency"],
                "created_at": created_at.isoformat(),
            }
            event = Event(
                type=ORDER_CREATED,
                key=str(order_id),
                producer="orders",
                data={
                    "order_id": str(order_id),
                    "user_id": str(user),
                    "total_cents": cart["total_cents"],
                    "currency": cart["currency"],
                    "payment_token": token,
                },
            )
            await add_to_outbox(conn, topic=ORDER_EVENTS, event=event)
            await store_answer(conn, user_id=user, key=key, status_code=202, body=body)
        return body
