"""Simulated shoppers for the flash sale, the capacity run and `make bench`'s writes, as
real ones are: each with a loopback address of its own (all of 127.0.0.0/8 reaches the
gateway on 127.0.0.1) and an account of its own named after that address. The per-address
login and sign-up limits stay on and are not what those runs measure; an account signed up
by one run is logged in to by the next. (The locustfile does the same for Locust's users,
from 127.0.1.1 on.)"""

from __future__ import annotations

import asyncio

import httpx

from shopctl.topology import Settings

PASSWORD = "simulated-shopper-password"
# Sign-ins at once: auth hashes 2 passwords at a time per instance; more only queue there.
SIGN_INS_AT_ONCE = 4
# Where each kind of run takes its addresses: 127.0.<block>.1 onwards.
BLOCKS = {"flash": 200, "capacity": 100, "bench": 150, "failover": 250}


def address(kind: str, n: int) -> str:
    return f"127.0.{BLOCKS[kind] + n // 254}.{1 + n % 254}"


def gateway_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings['GATEWAY_PORT']}"


def client_at(settings: Settings, source: str) -> httpx.AsyncClient:
    """A client of the gateway whose connections leave from `source`."""
    transport = httpx.AsyncHTTPTransport(local_address=source)
    return httpx.AsyncClient(base_url=gateway_url(settings), transport=transport, timeout=30)


async def sign_in(
    client: httpx.AsyncClient, kind: str, source: str, gate: asyncio.Semaphore
) -> dict[str, str]:
    """Authorization headers for the account of `source`, signing it up on first use.
    `gate` bounds the logins at once: each hashes a password, and more only queue in auth."""
    email = f"{kind}-shopper-{source.replace('.', '-')}@shopstack.dev"
    credentials = {"email": email, "password": PASSWORD}
    async with gate:
        login = await _patiently(client, "/auth/login", credentials)
        if login.status_code == 401:
            (await _patiently(client, "/auth/register", credentials)).raise_for_status()
            login = await _patiently(client, "/auth/login", credentials)
    login.raise_for_status()
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def _patiently(
    client: httpx.AsyncClient, path: str, body: dict[str, str], tries: int = 5
) -> httpx.Response:
    """POST, and after a 503 (auth's hashing queue is full) again after its Retry-After,
    as the contract asks of clients. Signing in is set-up, not what these runs measure."""
    for _ in range(tries - 1):
        answer = await client.post(path, json=body)
        if answer.status_code != 503:
            return answer
        await asyncio.sleep(float(answer.headers.get("retry-after", "1")))
    return await client.post(path, json=body)


async def admin_headers(client: httpx.AsyncClient, settings: Settings) -> dict[str, str]:
    credentials = {"email": settings["ADMIN_EMAIL"], "password": settings["ADMIN_PASSWORD"]}
    login = await client.post("/auth/login", json=credentials)
    login.raise_for_status()
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def set_stock(
    client: httpx.AsyncClient, headers: dict[str, str], product: str, stock: int
) -> None:
    patched = await client.patch(f"/products/{product}", json={"stock": stock}, headers=headers)
    patched.raise_for_status()
