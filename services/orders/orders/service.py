"""Orders use cases. No FastAPI here; keyword-only arguments."""

from __future__ import annotations

import uuid

from kit import Postgres
from kit.pagination import decode_time_cursor, encode_time_cursor
from orders import store
from orders.errors import OrderNotFound
from orders.schemas import OrderDetail, OrderPage


class OrderService:
    def __init__(self, *, db: Postgres) -> None:
        self.db = db

    async def list_orders(self, *, user_id: str, limit: int, cursor: str | None) -> OrderPage:
        after = decode_time_cursor(cursor) if cursor else None
        async with self.db.connection() as conn:
            # One more than asked tells whether another page exists.
            rows = await store.orders_of_user(
                conn, user_id=uuid.UUID(user_id), limit=limit + 1, after=after
            )
        page = rows[:limit]
        more = len(rows) > limit
        last = page[-1] if more else None
        next_cursor = encode_time_cursor(last.created_at, last.id) if last else None
        return OrderPage(items=page, next_cursor=next_cursor)

    async def order(self, *, user_id: str, order_id: uuid.UUID) -> OrderDetail:
        async with self.db.connection() as conn:
            found = await store.order_of_user(conn, order_id=order_id, user_id=uuid.UUID(user_id))
        # Someone else's order is as absent as one that does not exist.
        if found is None:
            raise OrderNotFound(f"You have no order {order_id}.")
        return OrderDetail.model_validate(found)
