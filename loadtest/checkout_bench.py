"""End-to-end checkout on this machine: orders acknowledged per second, and the time from
POST /orders to CONFIRMED (median, p99), with CLIENTS shoppers each placing ORDERS orders
through the gateway. Baseline in the same run: the median of a cheap authenticated read
(GET /orders) through the same path.

Run against a stack started with `make up`: `make bench-checkout`. Bounded: a fixed number
of orders, and every wait has a deadline.
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx

from shopctl.topology import Settings

CLIENTS, ORDERS = 8, 25  # 200 orders
PRODUCT = "oak-shelf"


def shopper(gateway: str, token: str) -> list[tuple[float, float]]:
    """(seconds to 202, seconds to CONFIRMED) for each of this shopper's orders."""
    timings = []
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=gateway, timeout=30) as client:
        for _ in range(ORDERS):
            client.put(f"/cart/items/{PRODUCT}", json={"quantity": 1}, headers=auth)
            started = time.perf_counter()
            placed = client.post(
                "/orders",
                json={"payment_token": "tok_visa"},
                headers={**auth, "Idempotency-Key": str(uuid.uuid4())},
            )
            placed.raise_for_status()
            acked = time.perf_counter() - started
            deadline = time.monotonic() + 30
            while True:
                status = client.get(f"/orders/{placed.json()['id']}", headers=auth).json()["status"]
                if status != "PENDING" or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            assert status == "CONFIRMED", status
            timings.append((acked, time.perf_counter() - started))
    return timings


def main() -> int:
    settings = Settings.load()
    gateway = f"http://127.0.0.1:{settings['GATEWAY_PORT']}"
    with httpx.Client(base_url=gateway, timeout=30) as client:
        admin = client.post(
            "/auth/login",
            json={"email": settings["ADMIN_EMAIL"], "password": settings["ADMIN_PASSWORD"]},
        )
        admin.raise_for_status()
        client.patch(
            f"/products/{PRODUCT}",
            json={"stock": 100_000},
            headers={"Authorization": f"Bearer {admin.json()['access_token']}"},
        )
        tokens = []
        for n in range(CLIENTS):
            # The same shoppers every run: sign-ups are limited per address.
            account = {
                "email": f"bench-shopper-{n}@shopstack.dev",
                "password": "bench-password-123",
            }
            login = client.post("/auth/login", json=account)
            if login.status_code == 401:
                client.post("/auth/register", json=account).raise_for_status()
                login = client.post("/auth/login", json=account)
            login.raise_for_status()
            tokens.append(login.json()["access_token"])
        auth = {"Authorization": f"Bearer {tokens[0]}"}
        reads = []
        for _ in range(100):
            started = time.perf_counter()
            client.get("/orders", params={"limit": 1}, headers=auth).raise_for_status()
            reads.append(time.perf_counter() - started)
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = [
            t for batch in pool.map(lambda tok: shopper(gateway, tok), tokens) for t in batch
        ]
    elapsed = time.perf_counter() - started
    acks = sorted(a for a, _ in results)
    confirmed = sorted(c for _, c in results)

    def p99(values: list[float]) -> float:
        return values[min(len(values) - 1, int(len(values) * 0.99))] * 1000

    print(f"{len(results)} orders by {CLIENTS} concurrent shoppers through {gateway}")
    print(f"  orders/s (acknowledged, end to end):  {len(results) / elapsed:6.1f}")
    for label, values in (("POST /orders -> 202:", acks), ("POST -> CONFIRMED:", confirmed)):
        median = statistics.median(values) * 1000
        print(f"  {label:22} median {median:7.1f} ms   p99 {p99(values):7.1f} ms")
    print(f"  baseline GET /orders:       median {statistics.median(reads) * 1000:7.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
