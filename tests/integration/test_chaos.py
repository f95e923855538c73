"""Chaos under load: 50 checkouts while one orders and one payments instance are killed
(SIGKILL) and restarted by supervisord. Clients retry with the same Idempotency-Key, as
real clients do. Once the saga timeout has passed, every acknowledged order is terminal
and every invariant holds."""

import os
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from shopctl.local import LocalStack
from shopctl.verify import check_all
from tests.integration.test_auth import bearer, login, new_user

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PRODUCTS = ["walnut-lamp", "walnut-stool", "bamboo-lamp", "bamboo-stool", "pine-lamp"]


def place_with_retries(client: httpx.Client, user: dict[str, str], product: str, token: str) -> str:
    """Fill the cart and check out, retrying on 5xx and dropped connections with the same
    key; return the acknowledged order id."""
    key = str(uuid.uuid4())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            client.put(f"/cart/items/{product}", json={"quantity": 1}, headers=user)
            response = client.post(
                "/orders", json={"payment_token": token}, headers={**user, "Idempotency-Key": key}
            )
        except httpx.TransportError:
            time.sleep(0.2)
            continue
        if response.status_code == 202:
            return str(response.json()["id"])
        if response.status_code in (409, 500, 502, 503, 504):
            time.sleep(0.2)  # in flight elsewhere, or an instance just died: same key again
            continue
        raise AssertionError(f"{response.status_code} {response.text}")
    raise AssertionError("no acknowledgement within 60 s")


def test_kill_9_in_the_middle_of_50_checkouts(stack: LocalStack) -> None:
    gateway = f"http://127.0.0.1:{stack.settings['GATEWAY_PORT']}"
    with httpx.Client(base_url=gateway, timeout=30) as setup:
        users = [bearer(login(setup, new_user(setup))["access_token"]) for _ in range(10)]
        admin = bearer(
            login(setup, stack.settings["ADMIN_EMAIL"], stack.settings["ADMIN_PASSWORD"])[
                "access_token"
            ]
        )
        for product in PRODUCTS:
            setup.patch(f"/products/{product}", json={"stock": 100}, headers=admin)

    acknowledged: list[str] = []
    lock = threading.Lock()

    def shopper(n: int) -> None:
        with httpx.Client(base_url=gateway, timeout=30) as client:
            for round_ in range(5):
                token = "tok_declined" if (n + round_) % 5 == 0 else "tok_visa"
                order_id = place_with_retries(client, users[n], PRODUCTS[round_], token)
                with lock:
                    acknowledged.append(order_id)

    def chaos() -> None:
        while len(acknowledged) < 15:
            time.sleep(0.05)
        for name in ("orders-1", "payments-1"):
            pid = next(p["pid"] for p in stack.supervisor.processes() if p["name"] == name)
            os.kill(pid, signal.SIGKILL)  # supervisord starts it again by itself

    killer = threading.Thread(target=chaos)
    killer.start()
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(shopper, range(10)))
    killer.join()
    assert len(acknowledged) == len(set(acknowledged)) == 50

    # Every acknowledged order ends terminal; re-drive covers anything a killed instance
    # dropped between its database and Kafka.
    deadline = time.monotonic() + 90
    with httpx.Client(base_url=gateway, timeout=10) as client:
        pending = set(acknowledged)
        while pending and time.monotonic() < deadline:
            for user in users:
                for order in client.get("/orders", params={"limit": 100}, headers=user).json()[
                    "items"
                ]:
                    if order["status"] != "PENDING":
                        pending.discard(order["id"])
            time.sleep(1)
    assert not pending, f"{len(pending)} orders still PENDING"
    failures = [f"{c.name}: {c.detail}" for c in check_all(stack.settings) if not c.ok]
    assert failures == []
    stack.wait_ready()
