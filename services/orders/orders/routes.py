"""The orders API: thin routes over `OrderService`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse

from kit.deps import CurrentUser, from_state
from kit.openapi import problems
from orders.checkout import MAX_KEY_LENGTH, Checkout
from orders.schemas import CheckoutIn, OrderDetail, OrderPage, OrderRead
from orders.service import OrderService

Service = Annotated[OrderService, Depends(from_state("orders"))]
CheckoutDep = Annotated[Checkout, Depends(from_state("checkout"))]

router = APIRouter(prefix="/orders", tags=["orders"])


@router.get("", responses=problems(401, 422))
async def list_orders(
    user: CurrentUser,
    orders: Service,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> OrderPage:
    return await orders.list_orders(user_id=user.user_id, limit=limit, cursor=cursor)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OrderRead,
    responses=problems(400, 401, 409, 422),
    # Read by hand, so that a missing key is the 400 `idempotency-key-required` (as the
    # IETF Idempotency-Key draft asks), but documented as the required header it is.
    openapi_extra={
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": True,
                "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
            }
        ]
    },
)
async def place_order(
    body: CheckoutIn, request: Request, user: CurrentUser, checkout: CheckoutDep
) -> Response:
    code, answer = await checkout.place(
        user_id=user.user_id,
        authorization=request.headers["authorization"],
        key=request.headers.get("idempotency-key"),
        payment_token=body.payment_token,
    )
    media = "application/problem+json" if code >= 400 else "application/json"
    return JSONResponse(answer, status_code=code, media_type=media)


@router.get("/{order_id}", responses=problems(401, 404, 422))
async def read_order(order_id: uuid.UUID, user: CurrentUser, orders: Service) -> OrderDetail:
    return await orders.order(user_id=user.user_id, order_id=order_id)
