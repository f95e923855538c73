"""The payments API: the caller's own payments only."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from kit import Postgres
from kit.deps import CurrentUser
from payments.errors import PaymentNotFound

router = APIRouter(prefix="/payments", tags=["payments"])

_COLUMNS = "id, order_id, amount_cents, currency, status, decline_reason, created_at"


def _row(row: tuple[Any, ...]) -> dict[str, Any]:
    names = ("id", "order_id", "amount_cents", "currency", "status", "decline_reason", "created_at")
    return dict(zip(names, row, strict=True))


@router.get("")
async def list_payments(
    request: Request,
    user: CurrentUser,
    order_id: Annotated[uuid.UUID | None, Query()] = None,
) -> dict[str, list[dict[str, Any]]]:
    db: Postgres = request.app.state.db
    async with db.connection() as conn:
        cursor = await conn.execute(
            f"""SELECT {_COLUMNS} FROM payments WHERE user_id = %s
                AND (%s::uuid IS NULL OR order_id = %s) ORDER BY created_at DESC LIMIT 100""",
            (uuid.UUID(user.user_id), order_id, order_id),
        )
        return {"items": [_row(r) for r in await cursor.fetchall()]}


@router.get("/{payment_id}")
async def read_payment(
    payment_id: uuid.UUID, request: Request, user: CurrentUser
) -> dict[str, Any]:
    db: Postgres = request.app.state.db
    async with db.connection() as conn:
        cursor = await conn.execute(
            f"SELECT {_COLUMNS} FROM payments WHERE id = %s AND user_id = %s",
            (payment_id, uuid.UUID(user.user_id)),
        )
        row = await cursor.fetchone()
    if row is None:
        raise PaymentNotFound(f"You have no payment {payment_id}.")
    return _row(row)
