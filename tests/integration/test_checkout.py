"""The checkout saga end to end on the real stack, through the gateway: orders reach
CONFIRMED or CANCELLED, stock follows, keys replay, and the processor's own ledger shows
one capture per order however the processor misbehaves."""

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest

from shopctl.local import LocalStack
from tests.integration.test_auth import bearer, login, new_user

pytestmark = pytest.mark.integration


def shopper(gw: httpx.Client, product: str = "teak-lamp", quantity: int = 1) -> dict[str, str]:
    user = bearer(login(gw, new_user(gw))["access_token"])
    response = gw.put(f"/cart/items/{product}", json={"quantity": quantity}, headers=user)
    assert response.status_code == 200, response.text
    return user


def checkout(
    gw: httpx.Client, user: dict[str, str], token: str, key: str | None = None
) -> httpx.Response:
    headers = {**user, "Idempotency-Key": key or str(uuid.uuid4())}
    return gw.post("/orders", json={"payment_token": token}, headers=headers)


def wait_status(
    gw: httpx.Client, user: dict[str, str], order_id: str, timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        answer = gw.get(f"/orders/{order_id}", headers=user)
        if answer.status_code == 503 and time.monotonic() < deadline:
            # Every orders instance away for a moment (e.g. restarting a wedged consumer
            # after Kafka came back): a client comes back after Retry-After.
            time.sleep(float(answer.headers.get("retry-after", "1")))
            continue
        order: dict[str, Any] = answer.json()
        if order["status"] != "PENDING" or time.monotonic() > deadline:
            return order
        time.sleep(0.1)


def test_a_paid_order_is_confirmed_within_5s(gw: httpx.Client, psp: httpx.Client) -> None:
    stock_before = gw.get("/products/teak-lamp").json()["stock"]
    user = shopper(gw, quantity=2)
    placed = checkout(gw, user, "tok_visa")
    assert placed.status_code == 202, placed.text
    order = placed.json()
    assert order["status"] == "PENDING" and order["total_cents"] == sum(
        line["line_total_cents"] for line in order["items"]
    )
    started = time.monotonic()
    done = wait_status(gw, user, order["id"], timeout=5)
    assert done["status"] == "CONFIRMED", done
    print(f"\nPOST /orders -> CONFIRMED in {time.monotonic() - started:.2f}s")
    assert [h["status"] for h in done["history"]] == ["PENDING", "CONFIRMED"]
    assert gw.get("/cart", headers=user).json()["items"] == []
    assert gw.get("/products/teak-lamp").json()["stock"] == stock_before - 2
    payments = gw.get("/payments", params={"order_id": order["id"]}, headers=user).json()["items"]
    assert [p["status"] for p in payments] == ["SUCCEEDED"]
    assert len(psp.get("/v1/charges", params={"reference": order["id"]}).json()) == 1
    # Nobody else sees this order or its payments.
    stranger = bearer(login(gw, new_user(gw))["access_token"])
    assert gw.get(f"/orders/{order['id']}", headers=stranger).status_code == 404
    assert (
        gw.get("/payments", params={"order_id": order["id"]}, headers=stranger).json()["items"]
        == []
    )


def test_a_declined_order_is_cancelled_and_its_stock_comes_back(gw: httpx.Client) -> None:
    stock_before = gw.get("/products/teak-desk").json()["stock"]
    user = shopper(gw, product="teak-desk", quantity=3)
    placed = checkout(gw, user, "tok_declined")
    assert placed.status_code == 202
    done = wait_status(gw, user, placed.json()["id"], timeout=5)
    assert done["status"] == "CANCELLED" and done["cancel_reason"] == "card_declined"
    assert gw.get("/products/teak-desk").json()["stock"] == stock_before


def test_one_key_sent_20_times_at_once_makes_one_order(stack: LocalStack, gw: httpx.Client) -> None:
    user = shopper(gw, product="ash-shelf")
    key = str(uuid.uuid4())

    async def storm() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=str(gw.base_url), timeout=30) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        "/orders",
                        json={"payment_token": "tok_visa"},
                        headers={**user, "Idempotency-Key": key},
                    )
                    for _ in range(20)
                )
            )

    responses = asyncio.run(storm())
    codes = [r.status_code for r in responses]
    assert set(codes) <= {202, 409} and 202 in codes, codes
    ids = {r.json()["id"] for r in responses if r.status_code == 202}
    assert len(ids) == 1
    # Later, the same key replays the same answer; another body under it is refused.
    again = checkout(gw, user, "tok_visa", key)
    assert again.status_code == 202 and again.json()["id"] in ids
    assert checkout(gw, user, "tok_declined", key).status_code == 422
    mine = gw.get("/orders", headers=user).json()["items"]
    assert [o["id"] for o in mine] == list(ids)


def test_bad_checkouts_are_refused(gw: httpx.Client) -> None:
    user = bearer(login(gw, new_user(gw))["access_token"])
    empty = checkout(gw, user, "tok_visa")
    assert empty.status_code == 422 and empty.json()["type"].endswith("/empty-cart")
    no_key = gw.post("/orders", json={"payment_token": "tok_visa"}, headers=user)
    assert no_key.status_code == 400
    assert gw.post("/orders", json={}, headers={**user, "Idempotency-Key": "x"}).status_code == 422
    assert gw.get("/orders", headers=user).json()["items"] == []
    assert gw.get("/orders", params={"cursor": "%%%"}, headers=user).status_code == 422


def test_charge_then_timeout_still_captures_once(gw: httpx.Client, psp: httpx.Client) -> None:
    # The processor captures and then keeps the caller waiting past its 5 s timeout; the
    # consumer retries with the same key and gets the recorded answer.
    psp.put("/v1/faults", json={"charge_then_timeout_rate": 1.0, "hold_seconds": 8})
    user = shopper(gw, product="ash-stool")
    placed = checkout(gw, user, "tok_visa")
    time.sleep(6)
    psp.put("/v1/faults", json={})
    done = wait_status(gw, user, placed.json()["id"], timeout=20)
    assert done["status"] == "CONFIRMED"
    assert len(psp.get("/v1/charges", params={"reference": done["id"]}).json()) == 1


def test_an_order_whose_event_was_dead_lettered_is_redriven(
    stack: LocalStack, gw: httpx.Client, psp: httpx.Client
) -> None:
    # The processor fails every charge long enough for payments to give up on the event
    # (5 tries, then the dead-letter topic): the order is stranded, as by a lost event.
    psp.put("/v1/faults", json={"transient_error_rate": 1.0})
    user = shopper(gw, product="maple-lamp")
    placed = checkout(gw, user, "tok_visa")
    order_id = placed.json()["id"]
    time.sleep(8)
    assert gw.get(f"/orders/{order_id}", headers=user).json()["status"] == "PENDING"
    psp.put("/v1/faults", json={})
    # After the saga timeout (20 s) orders asks for the payment again, and it goes through.
    done = wait_status(gw, user, order_id, timeout=40)
    assert done["status"] == "CONFIRMED"
    assert len(psp.get("/v1/charges", params={"reference": order_id}).json()) == 1


def test_the_saga_exports_its_metrics(stack: LocalStack, gw: httpx.Client) -> None:
    user = shopper(gw, product="pine-shelf")
    order_id = checkout(gw, user, "tok_visa").json()["id"]
    # Not a latency check: on a stack that just started, the consumer groups may still
    # be settling, and the order is confirmed once they have.
    assert wait_status(gw, user, order_id, timeout=60)["status"] == "CONFIRMED"
    exported = ""
    for instance in [*stack.topology.instances("orders"), *stack.topology.instances("payments")]:
        exported += httpx.get(f"http://{instance.address}/metrics").text
    lines = exported.splitlines()
    for name, labels in (
        ("outbox_backlog", ['service="orders"']),
        ("outbox_published_total", ['service="orders"', 'topic="order-events"']),
        ("consumer_lag", ['group="payments"', 'topic="order-events"']),
        ("consumer_events_total", ['group="orders"', 'outcome="handled"']),
        ("saga_outcomes_total", ['outcome="confirmed"']),
        ("payments_total", ['outcome="succeeded"']),
    ):
        assert any(
            line.startswith(name + "{") and all(label in line for label in labels) for line in lines
        ), (name, labels)
