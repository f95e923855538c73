"""The card processor as payments sees it: an outside system (not in Consul) reached over
HTTP with an idempotency key per question, so asking again after a lost answer returns
the first answer instead of charging twice. Answers are typed; `ProcessorUnavailable`
means there is no final answer yet (try again with the same key)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from kit.errors import TransientFailure
from kit.http import Answer, Failed, HttpClient, Refused
from payments.config import PaymentsSettings


class ProcessorUnavailable(TransientFailure):
    pass


class RefundRefused(Exception):
    """The processor will not refund this capture: a defect for a person to look at (the
    event is dead-lettered with this reason)."""


@dataclass(frozen=True)
class ChargeResult:
    captured: bool
    charge_id: str | None
    # Why it was not captured: the processor's decline code, or our reading of a refusal.
    decline_reason: str | None


class Processor:
    """The HTTP client to the card processor, closed with the app."""

    def __init__(self, settings: PaymentsSettings) -> None:
        self.http = HttpClient(base_url=settings.psp_url, timeout=settings.psp_timeout_seconds)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.http.close()

    async def charge(
        self, *, order_id: uuid.UUID, amount_cents: int, currency: str, token: str
    ) -> ChargeResult:
        response = await self._post(
            "/v1/charges",
            key=f"order-{order_id}",
            body={
                "amount_cents": amount_cents,
                "currency": currency,
                "token": token,
                "reference": str(order_id),
            },
        )
        if response.status_code == 201:
            return ChargeResult(captured=True, charge_id=response.json()["id"], decline_reason=None)
        if response.status_code == 402:
            answer = response.json()
            return ChargeResult(
                captured=False,
                charge_id=answer.get("id"),
                decline_reason=str(answer.get("decline_code", "declined")),
            )
        if response.status_code == 400:
            # An unknown token will never be charged: that is a decline.
            return ChargeResult(captured=False, charge_id=None, decline_reason="invalid_token")
        if response.status_code == 422:
            # The processor refuses the request itself (an amount out of its range): asking
            # again cannot change that, so it is a final no.
            return ChargeResult(captured=False, charge_id=None, decline_reason="amount_refused")
        raise ProcessorUnavailable(f"the processor answered {response.status_code}")

    async def refund(self, *, order_id: uuid.UUID, charge_id: str) -> str:
        """Refund a capture in full; the refund's id. Refunding it again answers the same."""
        response = await self._post(
            "/v1/refunds", key=f"refund-{order_id}", body={"charge_id": charge_id}
        )
        if response.status_code == 201:
            return str(response.json()["id"])
        if response.status_code < 500 and response.status_code != 409:
            raise RefundRefused(f"refund of {charge_id} refused: {response.text}")
        if response.status_code == 409 and "already-refunded" in response.text:
            return "already-refunded"
        raise ProcessorUnavailable(f"the processor answered {response.status_code} to a refund")

    async def _post(self, path: str, *, key: str, body: dict[str, object]) -> Answer:
        try:
            return await self.http.send("POST", path, {"Idempotency-Key": key}, body)
        except (Refused, Failed) as exc:
            # Maybe done, maybe not: only asking again with the same key can tell.
            raise ProcessorUnavailable(f"no answer from the processor: {exc!r}") from exc
