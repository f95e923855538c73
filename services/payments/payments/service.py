"""Payments use cases for the API: the caller's own payments. No FastAPI here."""

from __future__ import annotations

import uuid

from kit import Postgres
from kit.pagination import decode_time_cursor, encode_time_cursor
from payments import store
from payments.errors import PaymentNotFound
from payments.schemas import PaymentPage, PaymentRead


class PaymentService:
    def __init__(self, *, db: Postgres) -> None:
        self.db = db

    async def list_payments(
        self, *, user_id: str, order_id: uuid.UUID | None, limit: int, cursor: str | None
    ) -> PaymentPage:
        after = decode_time_cursor(cursor) if cursor else None
        async with self.db.connection() as conn:
            # One more than asked tells whether another page exists.
            rows = await store.payments_of_user(
                conn, user_id=uuid.UUID(user_id), order_id=order_id, limit=limit + 1, after=after
            )
        page = rows[:limit]
        last = page[-1] if len(rows) > limit else None
        next_cursor = encode_time_cursor(last.created_at, last.id) if last else None
        return PaymentPage(items=page, next_cursor=next_cursor)

    async def payment(self, *, user_id: str, payment_id: uuid.UUID) -> PaymentRead:
        async with self.db.connection() as conn:
            found = await store.payment_of_user(
                conn, payment_id=payment_id, user_id=uuid.UUID(user_id)
            )
        # Someone else's payment is as absent as one that does not exist.
        if found is None:
            raise PaymentNotFound(f"You have no payment {payment_id}.")
        return found
