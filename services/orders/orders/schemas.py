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
