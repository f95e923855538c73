"""payments' half of the checkout saga: an order asking to be paid is charged at most once,
and a paid order that could not be fulfilled is refunded once.

The charge's idempotency key is derived from the order, so every retry, redelivery or
re-drive asks the processor the same question and gets the first answer back; the unique
order id on `payments` is the last line of defence. The payment, its ledger lines (which
sum to zero) and the outcome event are written in the consumer's inbox transaction.
"""

from __future__ import annotations

import logging
import uuid

from prometheus_client import Counter
from psycopg import AsyncConnection

from kit.events import Event, EventData, new_event
from kit.outbox import add_to_outbox
from payments import store
from payments.events import (
    PAYMENT_EVENTS,
    OrderCancelled,
    OrderCreated,
    PaymentFailed,
    PaymentRefunded,
    PaymentRequested,
    PaymentSucceeded,
)
from payments.processor import Processor

log = logging.getLogger("payments.charging")

_PAYMENT_IDS = uuid.UUID("3b9a6f43-0e52-4d1b-8c6e-5a7d2f1e9b04")
CHARGES = Counter("payments_total", "Orders paid, refused or refunded, by outcome.", ["outcome"])

# Money moves between these two accounts; a capture and its refund cancel out.
RECEIVABLE = "psp_receivable"
CUSTOMER = "customer_payments"


class Charging:
    def __init__(self, *, processor: Processor) -> None:
        self.processor = processor

    async def handle(self, conn: AsyncConnection, event: Event) -> None:
        if event.type == OrderCreated.event_type:
            await self._pay(conn, event.parse(OrderCreated))
        elif event.type == PaymentRequested.event_type:
            await self._pay(conn, event.parse(PaymentRequested))
        elif event.type == OrderCancelled.event_type:
            cancelled = event.parse(OrderCancelled)
            if cancelled.refund:
                await self._refund(conn, cancelled.order_id)

    async def _pay(self, conn: AsyncConnection, order: OrderCreated) -> None:
        existing = await store.lock_payment(conn, order.order_id)
        if existing is not None:
            # Decided before (a re-drive or a lost outcome event): say it again.
            await self._announce(conn, order.order_id, existing)
            return
        result = await self.processor.charge(
            order_id=order.order_id,
            amount_cents=order.total_cents,
            currency=order.currency,
            token=order.payment_token,
        )
        payment_id = uuid.uuid5(_PAYMENT_IDS, str(order.order_id))
        await store.insert_payment(
            conn,
            payment_id=payment_id,
            order_id=order.order_id,
            user_id=order.user_id,
            amount_cents=order.total_cents,
            currency=order.currency,
            succeeded=result.captured,
            charge_id=result.charge_id,
            decline_reason=result.decline_reason,
        )
        if result.captured:
            await store.post_ledger(
                conn, payment_id, [(RECEIVABLE, order.total_cents), (CUSTOMER, -order.total_cents)]
            )
        CHARGES.labels("succeeded" if result.captured else "failed").inc()
        decided = store.Payment(
            id=payment_id,
            status="SUCCEEDED" if result.captured else "FAILED",
            amount_cents=order.total_cents,
            currency=order.currency,
            decline_reason=result.decline_reason,
            psp_charge_id=result.charge_id,
        )
        await self._announce(conn, order.order_id, decided)

    async def _refund(self, conn: AsyncConnection, order_id: uuid.UUID) -> None:
        payment = await store.lock_payment(conn, order_id)
        if payment is None or payment.status != "SUCCEEDED" or payment.psp_charge_id is None:
            return  # nothing was captured, or it is refunded already
        refund_id = await self.processor.refund(order_id=order_id, charge_id=payment.psp_charge_id)
        await store.mark_refunded(conn, payment.id, refund_id)
        await store.post_ledger(
            conn,
            payment.id,
            [(RECEIVABLE, -payment.amount_cents), (CUSTOMER, payment.amount_cents)],
        )
        CHARGES.labels("refunded").inc()
        await self._publish(
            conn,
            order_id,
            PaymentRefunded(
                order_id=order_id,
                payment_id=payment.id,
                amount_cents=payment.amount_cents,
                currency=payment.currency,
            ),
        )

    async def _announce(
        self, conn: AsyncConnection, order_id: uuid.UUID, payment: store.Payment
    ) -> None:
        outcome: EventData
        if payment.status == "SUCCEEDED":
            outcome = PaymentSucceeded(
                order_id=order_id,
                payment_id=payment.id,
                amount_cents=payment.amount_cents,
                currency=payment.currency,
            )
        else:
            outcome = PaymentFailed(
                order_id=order_id,
                payment_id=payment.id,
                amount_cents=payment.amount_cents,
                currency=payment.currency,
                reason=payment.decline_reason or payment.status.lower(),
            )
        await self._publish(conn, order_id, outcome)

    async def _publish(self, conn: AsyncConnection, order_id: uuid.UUID, data: EventData) -> None:
        await add_to_outbox(
            conn,
            topic=PAYMENT_EVENTS,
            event=new_event(data, key=str(order_id), producer="payments"),
        )
