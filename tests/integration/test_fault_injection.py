"""Checkout load while, in turn, the order insert, the stock reservation, the processor and
the payments consumer fail. Clients retry with the same Idempotency-Key, as real clients
do; afterwards every acknowledged order is terminal and every invariant holds."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from shopctl.local import LocalStack
from shopctl.verify import check_all
from tests.integration.faults import admin, faulty_inserts
from tests.integration.test_auth import bearer, login, new_user
from tests.integration.test_chaos import place_with_retries

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PRODUCTS = ["ash-desk", "ash-chair", "ash-lamp", "ash-table", "birch-chair", "birch-lamp"]
FAULT_SECONDS = 5


def test_checkouts_survive_each_fault_in_turn(stack: LocalStack) -> None:
    gateway = f"http://127.0.0.1:{stack.settings['GATEWAY_PORT']}"
    psp = f"http://127.0.0.1:{stack.settings['PSP_PORT']}"
    with httpx.Client(base_url=gateway, timeout=30) as setup:
        staff = admin(setup, stack)
        for product in PRODUCTS:
            setup.patch(f"/products/{product}", json={"stock": 1000}, headers=staff)
        users = [bearer(login(setup, new_user(setup))["access_token"]) for _ in range(6)]

    acknowledged: list[tuple[dict[str, str], str]] = []
    faults_done = threading.Event()
    applied: list[str] = []

    def shopper(n: int) -> None:
        with httpx.Client(base_url=gateway, timeout=30) as client:
            round_ = 0
            while not faults_done.is_set():
                token = "tok_declined" if (n + round_) % 6 == 0 else "tok_visa"
                order_id = place_with_retries(client, users[n], PRODUCTS[n], token)
                acknowledged.append((users[n], order_id))
                round_ += 1

    def hold(what: str) -> None:
        applied.append(what)
        time.sleep(FAULT_SECONDS)

    def faults() -> None:
        try:
            time.sleep(2)
            with faulty_inserts(stack, "orders", "orders", times=10**6):
                hold("order insert fails")
            with faulty_inserts(stack, "cart", "stock_orders", times=10**6):
                hold("reservation fails")
            with httpx.Client(base_url=psp) as processor:
                processor.put("/v1/faults", json={"transient_error_rate": 1.0})
                hold("processor errors")
                processor.put(
                    "/v1/faults", json={"charge_then_timeout_rate": 0.3, "hold_seconds": 6}
                )
                hold("processor captures, then times out")
                processor.put("/v1/faults", json={})
            with faulty_inserts(stack, "payments", "payments", times=10**6):
                hold("payments consumer fails")
            time.sleep(2)
        finally:
            faults_done.set()

    injector = threading.Thread(target=faults)
    injector.start()
    with ThreadPoolExecutor(len(users)) as pool:
        list(pool.map(shopper, range(len(users))))
    injector.join()
    assert len(applied) == 5
    ids = [order_id for _, order_id in acknowledged]
    assert len(ids) == len(set(ids)) and len(ids) >= 30, len(ids)

    deadline = time.monotonic() + 120
    pending = {order_id: user for user, order_id in acknowledged}
    with httpx.Client(base_url=gateway, timeout=10) as client:
        while pending and time.monotonic() < deadline:
            for order_id, user in list(pending.items()):
                if client.get(f"/orders/{order_id}", headers=user).json()["status"] != "PENDING":
                    del pending[order_id]
            time.sleep(1)
    assert not pending, f"{len(pending)} of {len(ids)} orders still PENDING"
    print(f"\n{len(ids)} orders acknowledged through {', '.join(applied)}; all terminal")
    failures = [f"{c.name}: {c.detail}" for c in check_all(stack.settings) if not c.ok]
    assert failures == []
