"""The events orders emits and consumes (its own copies of the types)."""

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
    """Sent again for an order still PENDING after the saga timeout; payments answers it
    idempotently (the charge's idempotency key is the order's)."""

    event_type = "order.payment_requested"


class OrderCancelled(EventData):
    """An order ended CANCELLED. `refund` when it was paid and could not be fulfilled:
    payments gives the money back."""

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
