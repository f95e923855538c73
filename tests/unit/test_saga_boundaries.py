"""The saga's typed boundaries without servers: cart's answers as orders reads them, events
built and parsed in one place, and which failures a consumer retries."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson
import psycopg
import pytest

from kit import DependencyUnavailable
from kit.consumer import is_transient
from kit.discovery import Endpoint
from kit.events import Event, MalformedEvent, new_event
from kit.http import Answer
from kit.kafka import UndecodableRecord, decode_record
from kit.service_client import ServiceClient
from orders.cart_client import CartClient, ReservationLine
from orders.errors import OutOfStock, ReservationClosed, ReservationMismatch
from orders.events import OrderCreated
from payments.events import OrderCreated as PaymentsOrderCreated
from payments.processor import ProcessorUnavailable
from tests.unit.test_service_client import FixedEndpoints

pytestmark = pytest.mark.unit

CART = Endpoint("cart-1", "10.0.0.1", 8000)
PROBLEM = "application/problem+json"


def cart_answering(status: int, body: dict[str, object]) -> CartClient:
    async def answer(method: str, url: str, headers: Mapping[str, str] | None, json: Any) -> Answer:
        return Answer(status, {"content-type": PROBLEM}, orjson.dumps(body))

    return CartClient(ServiceClient(FixedEndpoints(CART), caller="unit", send=answer))


async def test_a_product_no_longer_sold_is_a_clear_refusal() -> None:
    # cart's 404 is a problem document; its fields must not be spread into the error.
    cart = cart_answering(
        404,
        {
            "type": "https://shopstack.dev/problems/product-not-found",
            "title": "x",
            "status": 404,
            "detail": "Unknown products: gone.",
            "product_ids": ["gone"],
        },
    )
    with pytest.raises(OutOfStock) as refused:
        await cart.reserve(
            order_id=uuid.uuid4(), lines=[ReservationLine(product_id="gone", quantity=1)]
        )
    assert refused.value.status == 409


async def test_cart_refusals_are_typed() -> None:
    mismatch = cart_answering(409, {"type": "https://shopstack.dev/problems/reservation-mismatch"})
    with pytest.raises(ReservationMismatch):
        await mismatch.reserve(
            order_id=uuid.uuid4(), lines=[ReservationLine(product_id="a", quantity=1)]
        )
    closed = cart_answering(409, {"type": "https://shopstack.dev/problems/reservation-closed"})
    with pytest.raises(ReservationClosed):
        await closed.commit(order_id=uuid.uuid4())
    with pytest.raises(DependencyUnavailable):  # an answer that does not fit is no answer
        await cart_answering(200, {"status": "MAYBE"}).release(order_id=uuid.uuid4())


def test_an_event_is_built_and_read_back_as_its_type_by_another_service() -> None:
    order_id = uuid.uuid4()
    created = OrderCreated(
        order_id=order_id,
        user_id=uuid.uuid4(),
        total_cents=500,
        currency="EUR",
        payment_token="tok_visa",
    )
    event = Event.from_envelope(new_event(created, key=str(order_id), producer="orders").envelope())
    assert event.type == "order.created"
    read = event.parse(PaymentsOrderCreated)
    assert read.order_id == order_id and read.total_cents == 500
    broken = Event(type="order.created", key="k", producer="orders", data={"order_id": "x"})
    with pytest.raises(MalformedEvent):
        broken.parse(PaymentsOrderCreated)


def test_undecodable_records_are_named_not_raised_from_poll() -> None:
    assert decode_record(b"k", b'{"a": 1}') == ("k", {"a": 1})
    for key, value in ((b"\xff", b"{}"), (b"k", b"\xff"), (b"k", b"not json"), (b"k", None)):
        with pytest.raises(UndecodableRecord):
            decode_record(key, value)


def test_transient_failures_are_retried_and_defects_are_not() -> None:
    assert is_transient(DependencyUnavailable("cart"))
    assert is_transient(ProcessorUnavailable("no answer"))
    assert is_transient(psycopg.errors.LockNotAvailable("lock timeout"))
    assert is_transient(psycopg.errors.QueryCanceled("statement timeout"))
    assert not is_transient(KeyError("total_cents"))
    assert not is_transient(ReservationClosed("SOLD"))
