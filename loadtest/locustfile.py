"""Shop traffic through the gateway, as Locust users: `make load` runs it headless with SLO
gates (shopctl/load.py), `make load-ui` with Locust's web UI.

- Shopper (most users): browses the catalog (most of all), views products, fills and
  edits a cart, checks out with a fresh Idempotency-Key and follows the order until the
  saga ends it. The time from POST /orders to CONFIRMED is its own entry. A share of
  checkouts pays with a card the processor declines; those must end CANCELLED.
- Newcomer (rare): signs up and logs in, then looks around.
- Abuser (rare): sends bad input; every answer must be a 4xx problem, never a 5xx.

Every user sends from an address and an account of its own (shoppers.py), so the
per-address login and sign-up limits stay on without being what the test measures.
Bounded: Locust's --run-time, and LOAD_MAX_REQUESTS requests in all.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from typing import Any

import gevent
import locust_metrics
from locust import HttpUser, between, constant_pacing, events, task
from locust.env import Environment
from shoppers import Account, bind, email_for, next_address

CONFIRMED = "checkout → CONFIRMED"
DECLINED = "declined checkout → CANCELLED"
locust_metrics.expect([("JOURNEY", CONFIRMED), ("JOURNEY", DECLINED), ("POST", "/orders")])
FOLLOW_DEADLINE_S = float(os.environ.get("LOAD_FOLLOW_DEADLINE_S", "30"))
DECLINED_SHARE = float(os.environ.get("LOAD_DECLINED_SHARE", "0.1"))
MAX_REQUESTS = int(os.environ.get("LOAD_MAX_REQUESTS", "1000000"))
# Stock each product is topped up to before the run, so that the load measures checkout,
# not sold-out products (the flash sale measures those).
STOCK = 1_000_000

catalog: list[str] = []

if os.environ.get("LOAD_PROFILE") == "spike":
    from shape import SpikeShape  # noqa: F401  (Locust runs the shape it finds here)


@events.test_start.add_listener
def stock_the_shop(environment: Environment, **_: Any) -> None:
    """Read the catalog and top every product's stock up, as the shop's admin."""
    import requests

    host = environment.host
    with requests.Session() as admin:
        credentials = {
            "email": os.environ.get("ADMIN_EMAIL", "admin@shopstack.dev"),
            "password": os.environ.get("ADMIN_PASSWORD", "shopstack-admin-dev"),
        }
        login = admin.post(f"{host}/auth/login", json=credentials, timeout=30)
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        cursor: str | None = None
        catalog.clear()
        while True:
            params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = admin.get(f"{host}/products", params=params, timeout=30).json()
            for product in page["items"]:
                catalog.append(product["id"])
                if product["stock"] < STOCK // 2:
                    admin.patch(
                        f"{host}/products/{product['id']}",
                        json={"stock": STOCK},
                        headers=headers,
                        timeout=30,
                    ).raise_for_status()
            cursor = page["next_cursor"]
            if not cursor:
                break


@events.request.add_listener
def stop_at_the_request_budget(**_: Any) -> None:
    runner = locust_metrics.runner()
    if runner is not None and runner.stats.total.num_requests >= MAX_REQUESTS:
        runner.quit()


class Shopper(HttpUser):
    wait_time = between(0.5, 2)

    def on_start(self) -> None:
        self.address = next_address()
        bind(self.client, self.address)
        self.account = Account(self.client, email_for(self.address))
        self.account.sign_in()
        self.client.delete("/cart", headers=self.account.headers)

    @task(10)
    def browse(self) -> None:
        page = self.client.get("/products", params={"limit": 20}, name="/products").json()
        if page.get("next_cursor") and random.random() < 0.3:
            self.client.get(
                "/products",
                params={"limit": 20, "cursor": page["next_cursor"]},
                name="/products?cursor",
            )

    @task(6)
    def view_product(self) -> None:
        self.client.get(f"/products/{random.choice(catalog)}", name="/products/{id}")

    @task(4)
    def edit_cart(self) -> None:
        headers = self.account.headers
        product = random.choice(catalog)
        self.client.put(
            f"/cart/items/{product}",
            json={"quantity": random.randint(1, 3)},
            headers=headers,
            name="/cart/items/{id}",
        )
        cart = self.client.get("/cart", headers=headers).json()
        if len(cart["items"]) > 3:
            removed = random.choice(cart["items"])["product_id"]
            self.client.delete(f"/cart/items/{removed}", headers=headers, name="/cart/items/{id}")

    @task(2)
    def check_out(self) -> None:
        headers = self.account.headers
        added = self.client.put(
            f"/cart/items/{random.choice(catalog)}",
            json={"quantity": 1},
            headers=headers,
            name="/cart/items/{id}",
        )
        if not added.ok:
            return  # as a person would: not to the checkout with what may be an empty cart
        declined = random.random() < DECLINED_SHARE
        started = time.perf_counter()
        placed = self.client.post(
            "/orders",
            json={"payment_token": "tok_declined" if declined else "tok_visa"},
            headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
        )
        if placed.status_code != 202:
            return
        locust_metrics.acknowledged.append(placed.json()["id"])
        self._follow(placed.json()["id"], started, "CANCELLED" if declined else "CONFIRMED")

    def _follow(self, order_id: str, started: float, expected: str) -> None:
        """Poll the order until the saga ends it; the wait is its own Locust entry."""
        name = DECLINED if expected == "CANCELLED" else CONFIRMED
        deadline = started + FOLLOW_DEADLINE_S
        status = "PENDING"
        while status == "PENDING" and time.perf_counter() < deadline:
            gevent.sleep(0.05)
            answer = self.client.get(
                f"/orders/{order_id}", headers=self.account.headers, name="/orders/{id} (follow)"
            )
            status = answer.json()["status"] if answer.status_code == 200 else status
        elapsed_ms = (time.perf_counter() - started) * 1000
        failure = None if status == expected else AssertionError(f"{order_id} ended {status}")
        self.environment.events.request.fire(
            request_type="JOURNEY",
            name=name,
            response_time=elapsed_ms,
            response_length=0,
            exception=failure,
            context={},
        )

    @task(1)
    def review_orders(self) -> None:
        headers = self.account.headers
        self.client.get("/orders", params={"limit": 10}, headers=headers, name="/orders")
        self.client.get("/payments", params={"limit": 10}, headers=headers, name="/payments")


class Newcomer(HttpUser):
    """Signs up and logs in; paced well under the per-address sign-up limit."""

    fixed_count = 1  # one, however many users run: sign-ups are rare
    wait_time = constant_pacing(60)

    def on_start(self) -> None:
        self.address = next_address()
        bind(self.client, self.address)

    @task
    def sign_up(self) -> None:
        account = Account(self.client, email_for(self.address, f"new-{uuid.uuid4().hex[:8]}"))
        account.sign_in()
        self.client.get("/auth/me", headers=account.headers)
        self.client.get("/products", params={"limit": 20}, name="/products")


class Abuser(HttpUser):
    """Bad input of every kind: each must get a 4xx problem+json, never a 5xx or a 2xx."""

    fixed_count = 1
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.address = next_address()
        bind(self.client, self.address)
        self.account = Account(self.client, email_for(self.address, "abuser"))
        self.account.sign_in()

    def _refused(self, method: str, path: str, name: str, **kwargs: Any) -> None:
        with self.client.request(
            method, path, name=f"bad: {name}", catch_response=True, **kwargs
        ) as answer:
            problem = answer.headers.get("content-type", "").startswith("application/problem+json")
            if 400 <= answer.status_code < 500 and problem:
                answer.success()
            else:
                answer.failure(f"expected a 4xx problem, got {answer.status_code}")

    @task
    def send_bad_input(self) -> None:
        headers = self.account.headers
        product = random.choice(catalog)
        cases = [
            ("PUT", f"/cart/items/{product}", "quantity 0", {"json": {"quantity": 0}}),
            ("PUT", f"/cart/items/{product}", "quantity text", {"json": {"quantity": "lots"}}),
            ("PUT", "/cart/items/no-such-product", "unknown product", {"json": {"quantity": 1}}),
            ("POST", "/orders", "no idempotency key", {"json": {"payment_token": "tok_visa"}}),
            ("POST", "/orders", "unknown field", {"json": {"payment_token": "x", "total": 1}}),
            ("GET", f"/orders/{uuid.uuid4()}", "someone else's order", {}),
            ("GET", "/orders/not-a-uuid", "malformed order id", {}),
            ("GET", "/products", "bad cursor", {"params": {"cursor": "%%%"}}),
            ("GET", "/products", "limit too large", {"params": {"limit": 10_000}}),
        ]
        for method, path, name, kwargs in cases:
            self._refused(method, path, name, headers=headers, **kwargs)
        self._refused("GET", "/cart", "forged token", headers={"Authorization": "Bearer x.y.z"})
        self._refused("POST", "/auth/login", "malformed login", json={"email": ""})
        self._refused(
            "POST",
            "/cart/items/x",
            "method not allowed",
            headers=headers,
            json={"quantity": 1},
        )
