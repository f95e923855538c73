"""The payments API: thin routes over `PaymentService`; the caller's own payments only."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from kit.deps import CurrentUser, from_state
from kit.openapi import problems
from payments.schemas import PaymentPage, PaymentRead
from payments.service import PaymentService

Service = Annotated[PaymentService, Depends(from_state("payments"))]

router = APIRouter(prefix="/payments", tags=["payments"])


@router.get("", responses=problems(401, 422))
async def list_payments(
    user: CurrentUser,
    payments: Service,
    order_id: Annotated[uuid.UUID | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> PaymentPage:
    return await payments.list_payments(
        user_id=user.user_id, order_id=order_id, limit=limit, cursor=cursor
    )


@router.get("/{payment_id}", responses=problems(401, 404, 422))
async def read_payment(payment_id: uuid.UUID, user: CurrentUser, payments: Service) -> PaymentRead:
    return await payments.payment(user_id=user.user_id, payment_id=payment_id)
