"""Invariant 5 on a sample, through the gateway as any client would: two accounts of the
probe's own, and neither reads nor changes what belongs to the other or to anyone else."""

from __future__ import annotations

import httpx

from shopctl.check import Check
from shopctl.topology import Settings

NAME = "nobody reads or changes another user's cart, orders or payments (a sample)"
PASSWORD = "verify-probe-password"


def _account(gw: httpx.Client, name: str) -> dict[str, str]:
    """The probe's own account, made on first use and kept: probing again costs no sign-up
    (which is limited per address) and leaves no trail of accounts behind."""
    email = f"verify-probe-{name}@shopstack.dev"
    credentials = {"email": email, "password": PASSWORD}
    login = gw.post("/auth/login", json=credentials)
    if login.status_code == 401:  # the first probe on this stack
        gw.post("/auth/register", json=credentials).raise_for_status()
        login = gw.post("/auth/login", json=credentials)
    login.raise_for_status()
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def find_leaks(gw: httpx.Client, orders: list[str], payments: list[str]) -> list[str]:
    alice, bob = _account(gw, "alice"), _account(gw, "bob")
    for probe in (alice, bob):  # whatever an interrupted probe left
        gw.delete("/cart", headers=probe)
    product = gw.get("/products", params={"limit": 1}).json()["items"][0]["id"]
    leaks = []
    gw.put(f"/cart/items/{product}", json={"quantity": 1}, headers=alice).raise_for_status()
    if gw.get("/cart", headers=bob).json()["items"]:
        leaks.append("a cart seen by another user")
    gw.delete("/cart", headers=bob)
    if not gw.get("/cart", headers=alice).json()["items"]:
        leaks.append("a cart emptied by another user")
    gw.delete("/cart", headers=alice)
    for order_id in orders:
        if gw.get(f"/orders/{order_id}", headers=bob).status_code != 404:
            leaks.append(f"order {order_id} readable by another user")
        mine = gw.get("/payments", params={"order_id": order_id}, headers=bob).json()
        if mine.get("items"):
            leaks.append(f"payments of order {order_id} listed for another user")
    if gw.get("/orders", headers=bob).json()["items"]:
        leaks.append("another user's orders listed")
    for payment_id in payments:
        if gw.get(f"/payments/{payment_id}", headers=bob).status_code != 404:
            leaks.append(f"payment {payment_id} readable by another user")
    return leaks


def probe_isolation(settings: Settings, *, orders: list[str], payments: list[str]) -> Check:
    gateway = f"http://127.0.0.1:{settings['GATEWAY_PORT']}"
    try:
        with httpx.Client(base_url=gateway, timeout=10) as gw:
            leaks = find_leaks(gw, orders, payments)
    except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
        return Check(NAME, False, f"could not probe through the gateway: {exc!r}")
    return Check(
        NAME,
        not leaks,
        f"2 probe accounts, {len(orders)} orders and {len(payments)} payments of others "
        f"tried: {'; '.join(leaks) or 'nothing leaked'}",
    )
