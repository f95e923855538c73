"""The events payments consumes and emits (its own copies of the types)."""

from __future__ import annotations

import uuid

from kit.events import EventData

ORDER_EVENTS = "order-events"
PAYMENT_EVENTS = "payment-events"


class OrderCreated(EventData):
    event_type = "order.created"

    order_id: uuid.UUID
    user_id: uuid.UUID
    total_cents: int
    currency: str
    payment_token: str


class PaymentRequested(OrderCreated):
    event_type = "order.payment_requested"


class OrderCancelled(EventData):
    event_type = "order.cancelled"

    order_id: uuid.UUID
    reason: str
    refund: bool


class PaymentSucceeded(EventData):
    event_type = "payment.succeeded"

    order_id: uuid.UUID
    payment_id: uuid.UUID
    amount_cents: int
    currency: str


class PaymentFailed(EventData):
    event_type = "payment.failed"

    order_id: uuid.UUID
    payment_id: uuid.UUID
    amount_cents: int
    currency: str
    reason: str


class PaymentRefunded(EventData):
    event_type = "payment.refunded"

    order_id: uuid.UUID
    payment_id: uuid.UUID
    amount_cents: int
    currency: str
