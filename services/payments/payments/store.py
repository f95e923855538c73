"""SQL for the payments domain: one payment per order at most, and its ledger lines."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import class_row

from payments.schemas import PaymentRead

_COLUMNS = "id, order_id, amount_cents, currency, status, decline_reason, created_at"


@dataclass(frozen=True)
class Payment:
    id: uuid.UUID
    status: str
    amount_cents: int
    currency: str
    decline_reason: str | None
    psp_charge_id: str | None


async def lock_payment(conn: AsyncConnection, order_id: uuid.UUID) -> Payment | None:
    async with conn.cursor(row_factory=class_row(Payment)) as cursor:
        await cursor.execute(
            """SELECT id, status, amount_cents, currency, decline_reason, psp_charge_id
               FROM payments WHERE order_id = %s FOR UPDATE""",
            (order_id,),
        )
        return await cursor.fetchone()


async def insert_payment(
    conn: AsyncConnection,
    *,
    payment_id: uuid.UUID,
    order_id: uuid.UUID,
    user_id: uuid.UUID,
    amount_cents: int,
    currency: str,
    succeeded: bool,
    charge_id: str | None,
    decline_reason: str | None,
) -> None:
    await conn.execute(
        """INSERT INTO payments (id, order_id, user_id, amount_cents, currency, status,
                                 psp_charge_id, decline_reason)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
        (
            payment_id,
            order_id,
            user_id,
            amount_cents,
            currency,
            "SUCCEEDED" if succeeded else "FAILED",
            charge_id,
            decline_reason,
        ),
    )


async def mark_refunded(conn: AsyncConnection, payment_id: uuid.UUID, refund_id: str) -> None:
    await conn.execute(
        "UPDATE payments SET status = 'REFUNDED', psp_refund_id = %s WHERE id = %s",
        (refund_id, payment_id),
    )


async def post_ledger(
    conn: AsyncConnection, payment_id: uuid.UUID, lines: list[tuple[str, int]]
) -> None:
    """One movement: lines that sum to zero (double entry)."""
    assert sum(amount for _, amount in lines) == 0, lines
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO ledger_lines (payment_id, account, amount_cents) VALUES (%s, %s, %s)",
            [(payment_id, account, amount) for account, amount in lines],
        )


async def payments_of_user(
    conn: AsyncConnection,
    *,
    user_id: uuid.UUID,
    order_id: uuid.UUID | None,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[PaymentRead]:
    """Newest first, keyset-paginated on (created_at, id)."""
    async with conn.cursor(row_factory=class_row(PaymentRead)) as cursor:
        await cursor.execute(
            f"""SELECT {_COLUMNS} FROM payments
                WHERE user_id = %(user)s AND (%(order)s::uuid IS NULL OR order_id = %(order)s)
                  AND (%(at)s::timestamptz IS NULL OR (created_at, id) < (%(at)s, %(id)s))
                ORDER BY created_at DESC, id DESC LIMIT %(limit)s""",
            {
                "user": user_id,
                "order": order_id,
                "at": after[0] if after else None,
                "id": after[1] if after else None,
                "limit": limit,
            },
        )
        return await cursor.fetchall()


async def payment_of_user(
    conn: AsyncConnection, *, payment_id: uuid.UUID, user_id: uuid.UUID
) -> PaymentRead | None:
    async with conn.cursor(row_factory=class_row(PaymentRead)) as cursor:
        await cursor.execute(
            f"SELECT {_COLUMNS} FROM payments WHERE id = %s AND user_id = %s",
            (payment_id, user_id),
        )
        return await cursor.fetchone()
