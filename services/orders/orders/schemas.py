"""Response bodies of the orders API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel


class OrderSummary(BaseModel):
    id: uuid.UUID
    status: str
    total_cents: int
    currency: str
    created_at: datetime


class OrderPage(BaseModel):
    items: list[OrderSummary]
    next_cursor: str | None
