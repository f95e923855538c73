"""The orders API: thin routes over `OrderService`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from kit.deps import CurrentUser
from orders.schemas import OrderPage
from orders.service import OrderService


def _service(request: Request) -> OrderService:
    service: OrderService = request.app.state.orders
    return service


Service = Annotated[OrderService, Depends(_service)]

router = APIRouter(prefix="/orders", tags=["orders"])


@router.get("")
async def list_orders(
    user: CurrentUser,
    orders: Service,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> OrderPage:
    return await orders.list_orders(user_id=user.user_id, limit=limit, cursor=cursor)
