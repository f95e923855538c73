"""Response bodies of the payments API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class PaymentRead(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    amount_cents: int
    currency: str
    status: Literal["PENDING", "SUCCEEDED", "FAILED", "REFUNDED"]
    decline_reason: str | None
    created_at: datetime


class PaymentPage(BaseModel):
    items: list[PaymentRead]
    next_cursor: str | None
