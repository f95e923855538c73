"""Orders use cases. No FastAPI here; keyword-only arguments."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

from kit import Postgres
from orders import store
from orders.errors import InvalidCursor, OrderNotFound
from orders.schemas import OrderPage


def encode_cursor(created_at: datetime, order_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{order_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created_at, _, order_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(created_at), uuid.UUID(order_id)
    except ValueError as exc:
        raise InvalidCursor("The cursor is not one this API gave out; start without it.") from exc


class OrderService:
    def __init__(self, *, db: Postgres) -> None:
        self.db = db

    async def list_orders(self, *, user_id: str, limit: int, cursor: str | None) -> OrderPage:
        after = decode_cursor(cursor) if cursor else None
        async with self.db.connection() as conn:
            # One more than asked tells whether another page exists.
            rows = await store.orders_of_user(
                conn, user_id=uuid.UUID(user_id), limit=limit + 1, after=after
            )
        page = rows[:limit]
        more = len(rows) > limit
        next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if more else None
        return OrderPage(items=page, next_cursor=next_cursor)

    async def order(self, *, user_id: str, order_id: uuid.UUID) -> dict[str, Any]:
        async with self.db.connection() as conn:
            found = await store.order_of_user(conn, order_id=order_id, user_id=uuid.UUID(user_id))
        # Someone else's order is as absent as one that does not exist.
        if found is None:
            raise OrderNotFound(f"You have no order {order_id}.")
        return found
