"""Request and response bodies of the cart API (public and internal)."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Product(BaseModel):
    id: str
    name: str
    description: str
    price_cents: int
    currency: str
    stock: int


class ProductPage(BaseModel):
    items: list[Product]
    next_cursor: str | None


class ProductPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    price_cents: int | None = Field(default=None, ge=0, le=100_000_000)
    stock: int | None = Field(default=None, ge=0, le=1_000_000)

    @model_validator(mode="after")
    def something_to_change(self) -> ProductPatch:
        if self.price_cents is None and self.stock is None:
            raise ValueError("give price_cents, stock, or both")
        return self


class QuantityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: int = Field(ge=1, le=99)

    @field_validator("quantity", mode="before")
    @classmethod
    def a_json_integer(cls, value: object) -> object:
        # JSON Schema's integer: 2 and 2.0 are the same number; "2" and true are not.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("quantity is a whole number, e.g. 2")
        return value


class CartLine(BaseModel):
    product_id: str
    name: str
    quantity: int
    unit_price_cents: int
    line_total_cents: int


class CartRead(BaseModel):
    items: list[CartLine]
    total_cents: int
    currency: str


class ReservationLine(BaseModel):
    product_id: str = Field(min_length=1, max_length=100)
    quantity: int = Field(ge=1, le=1000, strict=True)


class ReservationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: uuid.UUID
    lines: list[ReservationLine] = Field(min_length=1, max_length=100)


class LackingLine(BaseModel):
    product_id: str
    requested: int
    available: int


ReservationStatus = Literal["RESERVED", "REJECTED", "SOLD", "RELEASED"]


class ReservationRead(BaseModel):
    """The reservation's state now (not the state it had when first asked), with the lines
    it holds (or held, once SOLD or RELEASED) and, when REJECTED, the lines lacking stock."""

    order_id: uuid.UUID
    status: ReservationStatus
    lines: list[ReservationLine] = []
    lacking: list[LackingLine] = []
