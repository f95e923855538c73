"""The processor's HTTP API, Stripe-like:

    POST /v1/charges   (Idempotency-Key required) {"amount_cents", "currency", "token",
                       "reference"} -> 201 captured | 402 declined
    POST /v1/refunds   (Idempotency-Key required) {"charge_id"} -> 201 refunded in full
                       | 404 no such capture
    GET  /v1/charges?reference=...   the captures for a reference (an order id), each with
                                     its refunded_cents
    GET  /v1/captures                every capture
    GET  /v1/ledger                  totals, and references captured more than once
    PUT  /v1/faults                  latency, transient errors, charge-then-time-out

Test tokens: `tok_visa` is captured, `tok_declined` is declined. The same key with the
same request replays the first answer; with another request it is refused (422); while
the first is still being processed, 409. With `charge_then_timeout_rate`, a charge is
captured and recorded and then the answer is held back for `hold_seconds`, so the caller
times out not knowing: the nasty case a payments service must survive without charging
twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from psp.ledger import Ledger

TOKENS = {"tok_visa": "captured", "tok_declined": "declined"}


class ChargeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_cents: int = Field(gt=0, le=100_000_000)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    token: str = Field(max_length=64)
    reference: str = Field(min_length=1, max_length=128)


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    charge_id: str = Field(min_length=1, max_length=64)


class Faults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(default=0, ge=0, le=60_000)
    transient_error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    charge_then_timeout_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    hold_seconds: float = Field(default=30.0, ge=0.0, le=600.0)


def problem(status: int, slug: str, detail: str) -> JSONResponse:
    body = {"type": f"https://psp.example/problems/{slug}", "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def create_app(ledger_path: Path) -> FastAPI:
    app = FastAPI(title="shopstack card processor")
    ledger = Ledger(ledger_path)
    faults = Faults()
    in_flight: set[str] = set()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.put("/v1/faults")
    async def set_faults(body: Faults) -> Faults:
        nonlocal faults
        faults = body
        return faults

    @app.get("/v1/faults")
    async def get_faults() -> Faults:
        return faults

    @app.post("/v1/charges")
    async def charge(
        body: ChargeIn,
        idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    ) -> JSONResponse:
        if not idempotency_key:
            return problem(400, "idempotency-key-required", "Send an Idempotency-Key header.")
        request_hash = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
        if (answered := _answered(ledger, idempotency_key, request_hash)) is not None:
            return answered
        if idempotency_key in in_flight:
            return problem(
                409,
                "request-in-progress",
                "A request with this Idempotency-Key is still being processed.",
            )
        if body.token not in TOKENS:
            return problem(400, "unknown-token", "Use tok_visa or tok_declined.")
        in_flight.add(idempotency_key)
        try:
            await asyncio.sleep(faults.latency_ms / 1000)
            if random.random() < faults.transient_error_rate:
                # Failed before doing anything: nothing recorded, safe to retry.
                return problem(503, "temporarily-unavailable", "Try again.")
            status_code, answer, capture = _decide(body)
            ledger.record(
                key=idempotency_key,
                request_hash=request_hash,
                status_code=status_code,
                body=answer,
                capture=capture,
            )
        finally:
            in_flight.discard(idempotency_key)
        if random.random() < faults.charge_then_timeout_rate:
            await asyncio.sleep(faults.hold_seconds)
        return JSONResponse(answer, status_code=status_code)

    @app.post("/v1/refunds")
    async def refund(
        body: RefundIn,
        idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    ) -> JSONResponse:
        if not idempotency_key:
            return problem(400, "idempotency-key-required", "Send an Idempotency-Key header.")
        request_hash = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
        if (answered := _answered(ledger, idempotency_key, request_hash)) is not None:
            return answered
        await asyncio.sleep(faults.latency_ms / 1000)
        if random.random() < faults.transient_error_rate:
            return problem(503, "temporarily-unavailable", "Try again.")
        capture = ledger.capture(body.charge_id)
        if capture is None:
            return problem(404, "no-such-charge", f"No capture {body.charge_id}.")
        if capture["refunded_cents"]:
            return problem(409, "already-refunded", f"{body.charge_id} is refunded already.")
        refunded = {
            "id": f"re_{uuid.uuid4().hex[:24]}",
            "charge_id": body.charge_id,
            "amount_cents": capture["amount_cents"],
            "status": "refunded",
        }
        ledger.record(
            key=idempotency_key,
            request_hash=request_hash,
            status_code=201,
            body=refunded,
            refund=refunded,
        )
        return JSONResponse(refunded, status_code=201)

    @app.get("/v1/charges")
    async def charges(reference: str) -> list[dict[str, Any]]:
        return ledger.captures(reference)

    @app.get("/v1/captures")
    async def all_captures() -> list[dict[str, Any]]:
        return ledger.captures()

    @app.get("/v1/ledger")
    async def summary() -> dict[str, Any]:
        return ledger.summary()

    return app


def _answered(ledger: Ledger, key: str, request_hash: str) -> JSONResponse | None:
    """What a key already answers: the first answer again, or a refusal for another
    request under it; None when the request is new."""
    earlier = ledger.answer(key)
    if earlier is None:
        return None
    if earlier[0] != request_hash:
        return problem(
            422, "idempotency-key-reused", "This Idempotency-Key was used for another request."
        )
    return JSONResponse(earlier[2], status_code=earlier[1])


def _decide(body: ChargeIn) -> tuple[int, dict[str, Any], dict[str, Any] | None]:
    charge_id = f"ch_{uuid.uuid4().hex[:24]}"
    outcome: Literal["captured", "declined"] = TOKENS[body.token]  # type: ignore[assignment]
    answer = {"id": charge_id, "status": outcome, **json.loads(body.model_dump_json())}
    if outcome == "declined":
        answer["decline_code"] = "card_declined"
        return 402, answer, None
    capture = {
        "id": charge_id,
        "reference": body.reference,
        "amount_cents": body.amount_cents,
        "currency": body.currency,
    }
    return 201, answer, capture


app = create_app(Path(os.environ.get("PSP_LEDGER", ".run/psp/ledger.sqlite3")))
