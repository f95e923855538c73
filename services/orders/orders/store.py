"""SQL for the orders domain."""

from __future__ import annotations

import uuid
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import class_row

from orders.schemas import OrderSummary


async def orders_of_user(
    conn: AsyncConnection,
    *,
    user_id: uuid.UUID,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[OrderSummary]:
    """Newest first, keyset-paginated on (created_at, id): stable under inserts."""
    async with conn.cursor(row_factory=class_row(OrderSummary)) as cursor:
        if after is None:
            await cursor.execute(
                """SELECT id, status, total_cents, currency, created_at FROM orders
                   WHERE user_id = %s ORDER BY created_at DESC, id DESC LIMIT %s""",
                (user_id, limit),
            )
        else:
            await cursor.execute(
                """SELECT id, status, total_cents, currency, created_at FROM orders
                   WHERE user_id = %s AND (created_at, id) < (%s, %s)
                   ORDER BY created_at DESC, id DESC LIMIT %s""",
                (user_id, after[0], after[1], limit),
            )
        return await cursor.fetchall()
