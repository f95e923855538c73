"""cart's API as orders uses it: the caller's cart and the stock reservations, over the
kit's ServiceClient, answered as typed models (orders' own copies of cart's shapes).

Refusals come back as domain errors; anything else that is not an answer (cart away,
5xx, a body that does not fit) is `DependencyUnavailable`, a 503 for the caller.
"""

from __future__ import annotations

import uuid
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from kit import DependencyUnavailable
from kit.http import Answer
from kit.service_client import ServiceClient
from orders.errors import ReservationClosed, ReservationMismatch, UnknownProducts

M = TypeVar("M", bound=BaseModel)


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class CartItem(_Answer):
    product_id: str
    name: str
    quantity: int
    unit_price_cents: int
    line_total_cents: int


class CartSnapshot(_Answer):
    items: list[CartItem]
    total_cents: int
    currency: str


class ReservationLine(_Answer):
    product_id: str
    quantity: int


class LackingLine(_Answer):
    product_id: str
    requested: int
    available: int


class Reservation(_Answer):
    order_id: uuid.UUID
    status: Literal["RESERVED", "REJECTED", "SOLD", "RELEASED"]
    lines: list[ReservationLine] = []
    lacking: list[LackingLine] = []


def _parse(response: Answer, model: type[M]) -> M:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise DependencyUnavailable("cart") from exc


def _problem_type(response: Answer) -> str:
    try:
        return str(response.json().get("type", "")).rsplit("/", 1)[-1]
    except ValueError:
        return ""


class CartClient:
    def __init__(self, services: ServiceClient) -> None:
        self.services = services

    async def read(self, *, authorization: str) -> CartSnapshot:
        response = await self.services.request(
            "cart", "GET", "/cart", headers={"Authorization": authorization}
        )
        if response.status_code != 200:
            raise DependencyUnavailable("cart")
        return _parse(response, CartSnapshot)

    async def clear(self, *, authorization: str) -> None:
        await self.services.request(
            "cart", "DELETE", "/cart", headers={"Authorization": authorization}
        )

    async def reserve(self, *, order_id: uuid.UUID, lines: list[ReservationLine]) -> Reservation:
        response = await self.services.request(
            "cart",
            "POST",
            "/internal/reservations",
            json={"order_id": str(order_id), "lines": [line.model_dump() for line in lines]},
            idempotent=True,  # the same order id and lines are answered the same
        )
        if response.status_code == 404:
            raise UnknownProducts("A product in the cart is no longer sold; remove it.")
        if response.status_code == 409 and _problem_type(response) == "reservation-mismatch":
            raise ReservationMismatch(f"cart holds other lines for order {order_id}")
        if response.status_code != 200:
            raise DependencyUnavailable("cart")
        return _parse(response, Reservation)

    async def commit(self, *, order_id: uuid.UUID) -> Reservation:
        return await self._close(order_id, "commit")

    async def release(self, *, order_id: uuid.UUID) -> Reservation:
        return await self._close(order_id, "release")

    async def _close(self, order_id: uuid.UUID, action: str) -> Reservation:
        response = await self.services.request(
            "cart", "POST", f"/internal/reservations/{order_id}/{action}", idempotent=True
        )
        if response.status_code in (404, 409):
            # No reservation, or it already went the other way: asking again cannot help.
            raise ReservationClosed(f"cart refused to {action} order {order_id}: {response.text}")
        if response.status_code != 200:
            raise DependencyUnavailable("cart")
        return _parse(response, Reservation)
