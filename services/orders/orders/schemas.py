"""Response bodies of the orders API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class OrderSummary(BaseModel):
    id: uuid.UUID
    status: str
    total_cents: int
    currency: str
    created_at: datetime


class OrderPage(BaseModel):
    items: list[OrderSummary]
    next_cursor: str | None


class CheckoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payment_token: str = Field(min_length=1, max_length=64)


class OrderLine(BaseModel):
    product_id: str
    name: str
    quantity: int
    unit_price_cents: int
    line_total_cents: int


class OrderRead(BaseModel):
    """The answer to POST /orders (replayed as it was for the same Idempotency-Key)."""

    id: uuid.UUID
    status: str
    items: list[OrderLine]
    total_cents: int
    currency: str
    created_at: datetime


class StatusChange(BaseModel):
    status: str
    reason: str | None
    at: datetime


class OrderDetail(BaseModel):
    id: uuid.UUID
    status: str
    total_cents: int
    currency: str
    created_at: datetime
    cancel_reason: str | None
    items: list[OrderLine]
    history: list[StatusChange]
