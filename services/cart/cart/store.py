"""SQL for the catalog and for stock reservations."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from cart.schemas import Product

_COLUMNS = "id, name, description, price_cents, currency, stock"


async def seed_products(
    conn: AsyncConnection, products: list[dict[str, Any]], currency: str
) -> int:
    """Insert the products that are not there yet; return how many were new."""
    inserted = 0
    for p in products:
        cursor = await conn.execute(
            """INSERT INTO products (id, name, description, price_cents, currency, stock,
                                     initial_stock)
               VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING""",
            (
                p["id"],
                p["name"],
                p["description"],
                p["price_cents"],
                currency,
                p["stock"],
                p["stock"],
            ),
        )
        inserted += cursor.rowcount
    return inserted


async def product(conn: AsyncConnection, product_id: str) -> Product | None:
    async with conn.cursor(row_factory=class_row(Product)) as cursor:
        await cursor.execute(f"SELECT {_COLUMNS} FROM products WHERE id = %s", (product_id,))
        return await cursor.fetchone()


async def products_page(conn: AsyncConnection, *, limit: int, after: str | None) -> list[Product]:
    async with conn.cursor(row_factory=class_row(Product)) as cursor:
        await cursor.execute(
            f"""SELECT {_COLUMNS} FROM products WHERE %(after)s::text IS NULL OR id > %(after)s
                ORDER BY id LIMIT %(limit)s""",
            {"after": after, "limit": limit},
        )
        return await cursor.fetchall()


async def update_product(
    conn: AsyncConnection, product_id: str, *, price_cents: int | None, stock: int | None
) -> Product | None:
    """Setting the stock on hand moves initial_stock by the same amount, so that
    initial = on hand + reserved + sold keeps holding."""
    async with conn.cursor(row_factory=class_row(Product)) as cursor:
        await cursor.execute(
            f"""UPDATE products SET
                    price_cents = coalesce(%(price)s, price_cents),
                    initial_stock = initial_stock + coalesce(%(stock)s, stock) - stock,
                    stock = coalesce(%(stock)s, stock),
                    updated_at = now()
                WHERE id = %(id)s RETURNING {_COLUMNS}""",
            {"price": price_cents, "stock": stock, "id": product_id},
        )
        return await cursor.fetchone()


@dataclass(frozen=True)
class StockOrder:
    status: str
    # product id -> quantity asked for; None for a release that came before any request.
    requested: dict[str, int] | None
    outcome: dict[str, Any]


async def claim_order(
    conn: AsyncConnection, order_id: uuid.UUID, requested: dict[str, int]
) -> StockOrder | None:
    """Create the order's stock record, or return the one it already has. A second
    caller with the same order id waits here until the first one's transaction ends."""
    cursor = await conn.execute(
        """INSERT INTO stock_orders (order_id, status, outcome, requested)
           VALUES (%s, 'REJECTED', '{}', %s) ON CONFLICT (order_id) DO NOTHING""",
        (order_id, Jsonb(requested)),
    )
    if cursor.rowcount == 1:
        return None
    existing = await conn.execute(
        "SELECT status, requested, outcome FROM stock_orders WHERE order_id = %s FOR UPDATE",
        (order_id,),
    )
    row = await existing.fetchone()
    assert row is not None
    return StockOrder(status=row[0], requested=row[1], outcome=row[2])


async def close_unknown(conn: AsyncConnection, order_id: uuid.UUID) -> None:
    """Record a release for an order that never reserved (its request may still be on
    its way): the late request then finds the order closed and takes nothing."""
    await conn.execute(
        """INSERT INTO stock_orders (order_id, status, outcome)
           VALUES (%s, 'RELEASED', '{}') ON CONFLICT (order_id) DO NOTHING""",
        (order_id,),
    )


async def lock_stock(conn: AsyncConnection, product_ids: list[str]) -> dict[str, int]:
    """Lock the products' rows in one global order (by id), so that concurrent
    reservations of overlapping products never deadlock."""
    cursor = await conn.execute(
        "SELECT id, stock FROM products WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
        (product_ids,),
    )
    return {row[0]: row[1] for row in await cursor.fetchall()}


async def take_stock(conn: AsyncConnection, order_id: uuid.UUID, lines: dict[str, int]) -> None:
    for product_id, quantity in lines.items():
        await conn.execute(
            "UPDATE products SET stock = stock - %s, updated_at = now() WHERE id = %s",
            (quantity, product_id),
        )
        await conn.execute(
            "INSERT INTO reservation_lines (order_id, product_id, quantity) VALUES (%s, %s, %s)",
            (order_id, product_id, quantity),
        )


async def record_outcome(
    conn: AsyncConnection, order_id: uuid.UUID, status: str, outcome: dict[str, Any]
) -> None:
    await conn.execute(
        "UPDATE stock_orders SET status = %s, outcome = %s, updated_at = now() WHERE order_id = %s",
        (status, Jsonb(outcome), order_id),
    )


async def lock_order(conn: AsyncConnection, order_id: uuid.UUID) -> str | None:
    cursor = await conn.execute(
        "SELECT status FROM stock_orders WHERE order_id = %s FOR UPDATE", (order_id,)
    )
    row = await cursor.fetchone()
    return None if row is None else str(row[0])


async def return_stock(conn: AsyncConnection, order_id: uuid.UUID) -> list[str]:
    cursor = await conn.execute(
        """UPDATE products p SET stock = p.stock + r.quantity, updated_at = now()
           FROM reservation_lines r WHERE r.order_id = %s AND r.product_id = p.id
           RETURNING p.id""",
        (order_id,),
    )
    return [row[0] for row in await cursor.fetchall()]


async def set_order_status(conn: AsyncConnection, order_id: uuid.UUID, status: str) -> None:
    await conn.execute(
        "UPDATE stock_orders SET status = %s, updated_at = now() WHERE order_id = %s",
        (status, order_id),
    )


async def reserved_lines(conn: AsyncConnection, order_id: uuid.UUID) -> dict[str, int]:
    cursor = await conn.execute(
        "SELECT product_id, quantity FROM reservation_lines WHERE order_id = %s", (order_id,)
    )
    return {row[0]: row[1] for row in await cursor.fetchall()}
