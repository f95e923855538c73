"""The invariant-5 probe of `make verify` must notice a leak: a fake shop behind
httpx.MockTransport that keeps users apart, and the same shop with one leak at a time."""

from __future__ import annotations

import json

import httpx
import pytest

from shopctl.isolation import find_leaks

pytestmark = pytest.mark.unit


class FakeShop:
    """Per-user carts keyed by bearer token, no orders or payments of the caller's own."""

    def __init__(self, *, leak: str = "") -> None:
        self.leak = leak
        self.carts: dict[str, list[str]] = {}
        self.accounts: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path, user = request.url.path, request.headers.get("authorization", "")
        if path == "/auth/register":
            self.accounts.add(json.loads(request.content)["email"])
            return httpx.Response(201, json={})
        if path == "/auth/login":
            email = json.loads(request.content)["email"]
            if email not in self.accounts:
                return httpx.Response(401, json={})
            return httpx.Response(200, json={"access_token": email})
        if path == "/products":
            return httpx.Response(200, json={"items": [{"id": "oak-desk"}]})
        if path.startswith("/cart/items/"):
            self.carts.setdefault(user, []).append(path.rsplit("/", 1)[1])
            return httpx.Response(200, json={})
        if path == "/cart":
            owner = next(iter(self.carts), user) if self.leak == "cart" else user
            if request.method == "DELETE":
                self.carts.pop(owner, None)
                return httpx.Response(204)
            return httpx.Response(200, json={"items": self.carts.get(owner, [])})
        if path.startswith("/orders/"):
            return httpx.Response(200 if self.leak == "order" else 404, json={})
        if path == "/orders":
            return httpx.Response(200, json={"items": []})
        if path == "/payments":
            items = [{"id": "p"}] if self.leak == "payments" else []
            return httpx.Response(200, json={"items": items})
        if path.startswith("/payments/"):
            return httpx.Response(404, json={})
        return httpx.Response(500, content=json.dumps({"unexpected": path}))


def leaks(shop: FakeShop) -> list[str]:
    with httpx.Client(base_url="http://shop", transport=httpx.MockTransport(shop)) as gw:
        return find_leaks(gw, ["o-1"], ["p-1"])


def test_a_shop_that_keeps_users_apart_shows_no_leak() -> None:
    assert leaks(FakeShop()) == []


@pytest.mark.parametrize("leak", ["cart", "order", "payments"])
def test_each_kind_of_leak_is_reported(leak: str) -> None:
    assert leaks(FakeShop(leak=leak)) != []
