"""payments' half of the checkout saga: an order asking to be paid is charged at most once.

The charge's idempotency key is derived from the order, so every retry, redelivery or
re-drive asks the processor the same question and gets the first answer back; the unique
order id on `payments` is the last line of defence. The payment, its ledger lines (which
sum to zero) and the outcome event are written in the consumer's inbox transaction.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx
from prometheus_client import Counter
from psycopg import AsyncConnection

from kit.events import Event
from kit.outbox import add_to_outbox
from payments.errors import ProcessorUnavailable
from payments.events import (
    ORDER_CREATED,
    PAYMENT_EVENTS,
    PAYMENT_FAILED,
    PAYMENT_REQUESTED,
    PAYMENT_SUCCEEDED,
)

log = logging.getLogger("payments.charging")

_PAYMENT_IDS = uuid.UUID("3b9a6f43-0e52-4d1b-8c6e-5a7d2f1e9b04")
CHARGES = Counter("payments_total", "Orders paid or refused, by outcome.", ["outcome"])


class Charging:
    def __init__(self, *, psp: httpx.AsyncClient) -> None:
        self.psp = psp

    async def handle(self, conn: AsyncConnection, event: Event) -> None:
        if event.type not in (ORDER_CREATED, PAYMENT_REQUESTED):
            return
        order_id = uuid.UUID(event.key)
        cursor = await conn.execute(
            "SELECT id, status, amount_cents, currency, decline_reason FROM payments "
            "WHERE order_id = %s FOR UPDATE",
            (order_id,),
        )
        existing = await cursor.fetchone()
        if existing is not None:
            # Decided before (a re-drive or a lost outcome event): say it again.
            payment_id, status, amount, currency, reason = existing
            await self._announce(
                conn, order_id, payment_id, status == "SUCCEEDED", amount, currency, reason
            )
            return
        data = event.data
        answer = await self._charge(order_id, data)
        succeeded = answer["status"] == "captured"
        payment_id = uuid.uuid5(_PAYMENT_IDS, str(order_id))
        reason = None if succeeded else str(answer.get("decline_code", "declined"))
        await conn.execute(
            """INSERT INTO payments (id, order_id, user_id, amount_cents, currency, status,
                                     psp_charge_id, decline_reason)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
            (
                payment_id,
                order_id,
                uuid.UUID(data["user_id"]),
                data["total_cents"],
                data["currency"],
                "SUCCEEDED" if succeeded else "FAILED",
                answer["id"],
                reason,
            ),
        )
        if succeeded:
            for account, amount in (
                ("psp_receivable", data["total_cents"]),
                ("customer_payments", -data["total_cents"]),
            ):
                await conn.execute(
                    "INSERT INTO ledger_lines (payment_id, account, amount_cents) "
                    "VALUES (%s, %s, %s)",
                    (payment_id, account, amount),
                )
        CHARGES.labels("succeeded" if succeeded else "failed").inc()
        await self._announce(
            conn, order_id, payment_id, succeeded, data["total_cents"], data["currency"], reason
        )

    async def _charge(self, order_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self.psp.post(
                "/v1/charges",
                headers={"Idempotency-Key": f"order-{order_id}"},
                json={
                    "amount_cents": data["total_cents"],
                    "currency": data["currency"],
                    "token": data["payment_token"],
                    "reference": str(order_id),
                },
            )
        except httpx.HTTPError as exc:
            # Maybe charged, maybe not: only asking again with the same key can tell.
            raise ProcessorUnavailable(f"no answer from the processor: {exc!r}") from exc
        if response.status_code in (201, 402):
            result: dict[str, Any] = response.json()
            return result
        if response.status_code == 400:
            # An unknown token will never be charged: that is a decline.
            return {"id": None, "status": "declined", "decline_code": "invalid_token"}
        raise ProcessorUnavailable(f"the processor answered {response.status_code}")

    async def _announce(
        self,
        conn: AsyncConnection,
        order_id: uuid.UUID,
        payment_id: uuid.UUID,
        succeeded: bool,
        amount: int,
        currency: str,
        reason: str | None,
    ) -> None:
        event = Event(
            type=PAYMENT_SUCCEEDED if succeeded else PAYMENT_FAILED,
            key=str(order_id),
            producer="payments",
            data={
                "order_id": str(order_id),
                "payment_id": str(payment_id),
                "amount_cents": amount,
                "currency": currency,
                **({} if succeeded else {"reason": reason}),
            },
        )
        await add_to_outbox(conn, topic=PAYMENT_EVENTS, event=event)
