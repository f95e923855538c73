"""Login cost on this machine: argon2id hashes per second with auth's settings, and the
median login latency through the gateway next to a baseline request that does no
hashing (the JWKS document), measured in the same run.

Run against a stack started with `make up`: `make bench-auth`. Bounded: a few dozen
requests, under the per-address login limit.
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from argon2 import PasswordHasher

from auth.config import AuthSettings
from shopctl.topology import Settings

LOGINS = 25  # stays under the default 30 attempts per address per minute
BASELINE = 100


def hashes_per_second(hasher: PasswordHasher, threads: int, count: int = 24) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(hasher.hash, [f"password-{n}-xxxxxxxx" for n in range(count)]))
    return count / (time.perf_counter() - started)


def median_ms(client: httpx.Client, method: str, url: str, count: int, **kwargs: object) -> float:
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.request(method, url, **kwargs)  # type: ignore[arg-type]
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code == 429:
            raise SystemExit(
                f"login limit reached for this address (it works); run again in "
                f"{response.headers.get('retry-after', '60')} s"
            )
        response.raise_for_status()
    return statistics.median(timings)


def main() -> int:
    auth = AuthSettings()
    hasher = PasswordHasher(
        time_cost=auth.argon2_time_cost,
        memory_cost=auth.argon2_memory_kib,
        parallelism=auth.argon2_parallelism,
    )
    print(
        f"argon2id m={auth.argon2_memory_kib} KiB t={auth.argon2_time_cost} "
        f"p={auth.argon2_parallelism}"
    )
    for threads in (1, 2):
        print(f"  hashes/s with {threads} thread(s): {hashes_per_second(hasher, threads):.1f}")

    gateway = f"http://127.0.0.1:{Settings.load()['GATEWAY_PORT']}"
    with httpx.Client(base_url=gateway, timeout=10) as client:
        email, password = f"bench-{uuid.uuid4().hex[:8]}@example.com", "bench-password-123"
        client.post("/auth/register", json={"email": email, "password": password})
        baseline = median_ms(client, "GET", "/auth/.well-known/jwks.json", BASELINE)
        login = median_ms(
            client, "POST", "/auth/login", LOGINS, json={"email": email, "password": password}
        )
    print(f"through the gateway ({gateway}), sequential:")
    print(f"  GET /auth/.well-known/jwks.json (baseline): median {baseline:6.1f} ms, n={BASELINE}")
    print(f"  POST /auth/login:                           median {login:6.1f} ms, n={LOGINS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
