"""SQL for the orders domain."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row, dict_row

from orders.cart_client import CartSnapshot
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


async def insert_order(
    conn: AsyncConnection,
    *,
    order_id: uuid.UUID,
    user_id: uuid.UUID,
    cart: CartSnapshot,
    payment_token: str,
) -> datetime:
    cursor = await conn.execute(
        """INSERT INTO orders (id, user_id, status, total_cents, currency, payment_token)
           VALUES (%s, %s, 'PENDING', %s, %s, %s) RETURNING created_at""",
        (order_id, user_id, cart.total_cents, cart.currency, payment_token),
    )
    row = await cursor.fetchone()
    assert row is not None
    async with conn.cursor() as lines:
        await lines.executemany(
            """INSERT INTO order_items (order_id, product_id, name, quantity, unit_price_cents)
               VALUES (%s, %s, %s, %s, %s)""",
            [(order_id, i.product_id, i.name, i.quantity, i.unit_price_cents) for i in cart.items],
        )
    await conn.execute(
        "INSERT INTO order_status_history (order_id, status) VALUES (%s, 'PENDING')", (order_id,)
    )
    created_at: datetime = row[0]
    return created_at


async def lock_pending_status(conn: AsyncConnection, order_id: uuid.UUID) -> str | None:
    cursor = await conn.execute("SELECT status FROM orders WHERE id = %s FOR UPDATE", (order_id,))
    row = await cursor.fetchone()
    return None if row is None else str(row[0])


async def finish_order(
    conn: AsyncConnection, order_id: uuid.UUID, *, status: str, reason: str | None
) -> float:
    """Close the order; returns the seconds from its acknowledgement to now."""
    cursor = await conn.execute(
        "UPDATE orders SET status = %s, cancel_reason = %s, updated_at = now() WHERE id = %s "
        "RETURNING extract(epoch FROM now() - created_at)",
        (status, reason, order_id),
    )
    row = await cursor.fetchone()
    await conn.execute(
        "INSERT INTO order_status_history (order_id, status, reason) VALUES (%s, %s, %s)",
        (order_id, status, reason),
    )
    return float(row[0]) if row else 0.0


async def claim_overdue(
    conn: AsyncConnection, *, older_than_seconds: float, limit: int
) -> list[dict[str, Any]]:
    """PENDING orders whose payment has not answered in time, marked as asked again."""
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            """UPDATE orders SET last_requested_at = now()
               WHERE id IN (SELECT id FROM orders WHERE status = 'PENDING'
                            AND last_requested_at < now() - make_interval(secs => %s)
                            ORDER BY last_requested_at LIMIT %s FOR UPDATE SKIP LOCKED)
               RETURNING id, user_id, total_cents, currency, payment_token""",
            (older_than_seconds, limit),
        )
        return await cursor.fetchall()


async def order_of_user(
    conn: AsyncConnection, *, order_id: uuid.UUID, user_id: uuid.UUID
) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            """SELECT id, status, total_cents, currency, created_at, cancel_reason FROM orders
               WHERE id = %s AND user_id = %s""",
            (order_id, user_id),
        )
        order = await cursor.fetchone()
        if order is None:
            return None
        await cursor.execute(
            """SELECT product_id, name, quantity, unit_price_cents,
                      quantity * unit_price_cents AS line_total_cents
               FROM order_items WHERE order_id = %s ORDER BY product_id""",
            (order_id,),
        )
        order["items"] = await cursor.fetchall()
        await cursor.execute(
            "SELECT status, reason, at FROM order_status_history WHERE order_id = %s ORDER BY at",
            (order_id,),
        )
        order["history"] = await cursor.fetchall()
    return order
