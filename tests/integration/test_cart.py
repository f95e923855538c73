"""Issue 6's promises on the real stack: the catalog and carts through the gateway, and
stock reservations that never oversell, whatever the concurrency."""

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
import psycopg
import pytest

from shopctl.local import LocalStack
from shopctl.topology import database_url
from tests.integration.test_auth import bearer, login, new_user

pytestmark = pytest.mark.integration


@pytest.fixture
def admin(stack: LocalStack, gw: httpx.Client) -> dict[str, str]:
    return bearer(
        login(gw, stack.settings["ADMIN_EMAIL"], stack.settings["ADMIN_PASSWORD"])["access_token"]
    )


def customer(gw: httpx.Client) -> dict[str, str]:
    return bearer(login(gw, new_user(gw))["access_token"])


def cart_db(stack: LocalStack) -> psycopg.Connection:
    return psycopg.connect(database_url("cart", stack.topology.postgres_addresses()))


def test_catalog_pages_through_every_product(gw: httpx.Client) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 25, **({"cursor": cursor} if cursor else {})}
        page = gw.get("/products", params=params).json()
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) >= 50
    assert seen == sorted(seen)
    one = gw.get(f"/products/{seen[0]}").json()
    assert set(one) == {"id", "name", "description", "price_cents", "currency", "stock"}
    assert isinstance(one["price_cents"], int) and one["currency"] == "EUR"
    assert gw.get("/products/no-such-thing").status_code == 404
    assert gw.get("/products", params={"limit": 101}).status_code == 422
    for bad in ("%%%", "bm90LWEtY3Vyc29yfHdpdGh8cGFydHM="):
        refused = gw.get("/products", params={"cursor": bad})
        assert refused.status_code == 422 and refused.json()["type"].endswith("/invalid-cursor")


def test_two_users_fill_their_own_carts(gw: httpx.Client) -> None:
    alice, bob = customer(gw), customer(gw)
    desk = gw.get("/products/oak-desk").json()
    chair = gw.get("/products/pine-chair").json()
    a = gw.put("/cart/items/oak-desk", json={"quantity": 2}, headers=alice)
    b = gw.put("/cart/items/pine-chair", json={"quantity": 1}, headers=bob)
    assert a.status_code == b.status_code == 200
    # PUT is idempotent: the gateway may retry it, and the cart stays the same.
    assert gw.put("/cart/items/oak-desk", json={"quantity": 2}, headers=alice).json() == a.json()
    alices = gw.get("/cart", headers=alice).json()
    assert alices == {
        "items": [
            {
                "product_id": "oak-desk",
                "name": desk["name"],
                "quantity": 2,
                "unit_price_cents": desk["price_cents"],
                "line_total_cents": 2 * desk["price_cents"],
            }
        ],
        "total_cents": 2 * desk["price_cents"],
        "currency": "EUR",
    }
    bobs = gw.get("/cart", headers=bob).json()
    assert [line["product_id"] for line in bobs["items"]] == ["pine-chair"]
    assert bobs["total_cents"] == chair["price_cents"]

    # Bob removing oak-desk touches only his own cart.
    gw.delete("/cart/items/oak-desk", headers=bob)
    assert gw.get("/cart", headers=alice).json() == alices
    after = gw.delete("/cart/items/oak-desk", headers=alice)
    assert after.status_code == 200 and after.json()["items"] == []
    assert gw.delete("/cart", headers=bob).status_code == 204
    assert gw.get("/cart", headers=bob).json()["items"] == []
    assert gw.get("/cart").status_code == 401


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/cart/items/oak-lamp", {"quantity": 0}, 422),
        ("/cart/items/oak-lamp", {"quantity": 100}, 422),
        ("/cart/items/oak-lamp", {"quantity": -1}, 422),
        ("/cart/items/oak-lamp", {"quantity": "two"}, 422),
        ("/cart/items/oak-lamp", {"quantity": 1, "price_cents": 1}, 422),
        ("/cart/items/no-such-product", {"quantity": 1}, 404),
        ("/cart/items/oak-lamp", {"quantity": 99}, 409),
        ("/cart/items/oak-lamp", {"quantity": 1, "pad": "x" * 70_000}, 413),
    ],
)
def test_bad_cart_input_is_refused_and_changes_nothing(
    gw: httpx.Client, admin: dict[str, str], path: str, body: dict[str, Any], status: int
) -> None:
    # 99 must be more than there is, whatever earlier tests (a load run) left on hand.
    assert gw.patch("/products/oak-lamp", json={"stock": 10}, headers=admin).status_code == 200
    user = customer(gw)
    gw.put("/cart/items/oak-stool", json={"quantity": 1}, headers=user)
    before = gw.get("/cart", headers=user).json()
    response = gw.put(path, json=body, headers=user)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"]
    assert gw.get("/cart", headers=user).json() == before


def test_only_admins_change_products_and_changes_show_at_once(
    gw: httpx.Client, admin: dict[str, str]
) -> None:
    original = gw.get("/products/maple-shelf").json()
    for _ in range(4):  # fill both instances' view of the cache
        assert gw.get("/products/maple-shelf").json() == original
    assert (
        gw.patch("/products/maple-shelf", json={"price_cents": 1}, headers=customer(gw)).status_code
        == 403
    )
    assert gw.patch("/products/maple-shelf", json={"price_cents": 1}).status_code == 401
    assert gw.patch("/products/maple-shelf", json={}, headers=admin).status_code == 422
    assert (
        gw.patch("/products/maple-shelf", json={"price_cents": -5}, headers=admin).status_code
        == 422
    )
    try:
        changed = gw.patch(
            "/products/maple-shelf",
            json={"price_cents": original["price_cents"] + 1},
            headers=admin,
        )
        assert changed.status_code == 200
        for _ in range(4):
            assert (
                gw.get("/products/maple-shelf").json()["price_cents"] == original["price_cents"] + 1
            )
    finally:
        gw.patch(
            "/products/maple-shelf", json={"price_cents": original["price_cents"]}, headers=admin
        )


def stock_accounts(stack: LocalStack, product: str) -> dict[str, int]:
    with cart_db(stack) as conn:
        row = conn.execute(
            """SELECT p.initial_stock, p.stock,
                      coalesce(sum(r.quantity) FILTER (WHERE o.status = 'RESERVED'), 0),
                      coalesce(sum(r.quantity) FILTER (WHERE o.status = 'SOLD'), 0)
               FROM products p LEFT JOIN reservation_lines r ON r.product_id = p.id
               LEFT JOIN stock_orders o ON o.order_id = r.order_id
               WHERE p.id = %s GROUP BY p.id""",
            (product,),
        ).fetchone()
    assert row is not None
    return dict(zip(("initial", "on_hand", "reserved", "sold"), row, strict=True))


async def _reserve_all(stack: LocalStack, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every reservation at once, each asked again after a 503's Retry-After, as orders
    does (a burst this size may find an instance's Postgres pool busy for a second: each
    commit waits for the synchronous replica)."""
    instances = [f"http://{i.address}" for i in stack.topology.instances("cart")]

    async def reserve(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> httpx.Response:
        for _ in range(5):
            response = await client.post(url, json=body)
            if response.status_code != 503:
                break
            await asyncio.sleep(float(response.headers["retry-after"]))
        return response

    async with httpx.AsyncClient(timeout=30) as client:
        responses = await asyncio.gather(
            *(
                reserve(client, f"{instances[n % len(instances)]}/internal/reservations", body)
                for n, body in enumerate(bodies)
            )
        )
    assert all(r.status_code == 200 for r in responses), {r.status_code for r in responses}
    return [r.json() for r in responses]


def test_no_oversell_under_200_concurrent_reservations(
    stack: LocalStack, gw: httpx.Client, admin: dict[str, str]
) -> None:
    product = "cherry-table"
    assert gw.patch(f"/products/{product}", json={"stock": 50}, headers=admin).status_code == 200
    before = stock_accounts(stack, product)  # earlier runs may have left reservations
    bodies = [
        {"order_id": str(uuid.uuid4()), "lines": [{"product_id": product, "quantity": 1}]}
        for _ in range(200)
    ]
    results = asyncio.run(_reserve_all(stack, bodies))
    assert Counter(r["status"] for r in results) == {"RESERVED": 50, "REJECTED": 150}
    rejected = next(r for r in results if r["status"] == "REJECTED")
    assert rejected["lacking"] == [{"product_id": product, "requested": 1, "available": 0}]
    assert gw.get(f"/products/{product}").json()["stock"] == 0

    # The same order ids again, concurrently: the first results, nothing reserved twice.
    again = asyncio.run(_reserve_all(stack, bodies[:100]))
    assert again == results[:100]

    reserved = [r["order_id"] for r in results if r["status"] == "RESERVED"]
    instance = f"http://{stack.topology.instances('cart')[1].address}"
    with httpx.Client(base_url=instance) as direct:
        for _ in range(3):  # released exactly once, however often asked
            assert (
                direct.post(f"/internal/reservations/{reserved[0]}/release").json()["status"]
                == "RELEASED"
            )
        for _ in range(2):
            assert (
                direct.post(f"/internal/reservations/{reserved[1]}/commit").json()["status"]
                == "SOLD"
            )
        assert direct.post(f"/internal/reservations/{reserved[1]}/release").status_code == 409
        # A refused reservation holds nothing: releasing it answers so, selling it is refused.
        refused = rejected["order_id"]
        released = direct.post(f"/internal/reservations/{refused}/release")
        assert released.status_code == 200 and released.json()["status"] == "REJECTED"
        assert direct.post(f"/internal/reservations/{refused}/commit").status_code == 409
        # Releasing an order id cart never saw closes it, so a late reservation takes nothing.
        unseen = direct.post(f"/internal/reservations/{uuid.uuid4()}/release")
        assert unseen.status_code == 200 and unseen.json()["status"] == "RELEASED"
        assert direct.post(f"/internal/reservations/{uuid.uuid4()}/commit").status_code == 404
    assert gw.get(f"/products/{product}").json()["stock"] == 1

    after = stock_accounts(stack, product)
    assert after["on_hand"] == 1
    assert after["reserved"] - before["reserved"] == 48
    assert after["sold"] - before["sold"] == 1
    assert after["initial"] == after["on_hand"] + after["reserved"] + after["sold"]
    with httpx.Client(base_url=instance) as direct:  # no order holds them: give them back
        for order_id in reserved[2:]:
            direct.post(f"/internal/reservations/{order_id}/release").raise_for_status()


def test_a_reservation_is_all_lines_or_none(
    stack: LocalStack, gw: httpx.Client, admin: dict[str, str]
) -> None:
    gw.patch("/products/birch-lamp", json={"stock": 5}, headers=admin)
    gw.patch("/products/birch-stool", json={"stock": 1}, headers=admin)
    instance = f"http://{stack.topology.instances('cart')[0].address}"
    body = {
        "order_id": str(uuid.uuid4()),
        "lines": [
            {"product_id": "birch-lamp", "quantity": 2},
            {"product_id": "birch-stool", "quantity": 3},
        ],
    }
    result = httpx.post(f"{instance}/internal/reservations", json=body).json()
    assert result["status"] == "REJECTED"
    assert result["lacking"] == [{"product_id": "birch-stool", "requested": 3, "available": 1}]
    assert gw.get("/products/birch-lamp").json()["stock"] == 5  # nothing taken


def test_redis_down_products_still_read_carts_answer_503(
    stack: LocalStack, gw: httpx.Client
) -> None:
    user = customer(gw)
    nodes = [node.name for node in stack.topology.redis_nodes()]
    for node in nodes:
        stack.supervisor.stop(node)
    try:
        product = gw.get("/products/oak-desk")
        assert product.status_code == 200 and product.json()["id"] == "oak-desk"
        cart_1 = stack.topology.instances("cart")[0]
        ready = httpx.get(f"http://{cart_1.address}/health/ready")
        assert ready.status_code == 200
        assert ready.json()["checks"]["redis"]["status"] == "degraded"
        refused = gw.get("/cart", headers=user)
        assert refused.status_code == 503
        assert refused.headers["retry-after"]
        assert refused.json()["dependency"] == "redis"
    finally:
        for node in nodes:
            stack.supervisor.start(node)
    # Leave the stack whole, and routed again, for the tests that follow.
    stack.wait_ready()
