"""The shop's state as `make verify` reads it: orders', payments' and cart's databases and
the card processor's own ledger, each source read in one snapshot (REPEATABLE READ), after
waiting for the stack to be quiet so that the sources describe the same moment."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg

from shopctl.topology import Settings, Topology, database_url


@dataclass(frozen=True)
class Order:
    id: str
    user_id: str
    status: str
    total_cents: int
    young: bool  # younger than the saga timeout: may still be in flight
    lines: dict[str, int]


@dataclass(frozen=True)
class Payment:
    id: str
    order_id: str
    status: str
    amount_cents: int
    charge_id: str | None


@dataclass(frozen=True)
class Reservation:
    status: str
    young: bool
    lines: dict[str, int]


@dataclass(frozen=True)
class Capture:
    id: str
    reference: str
    amount_cents: int
    refunded_cents: int


@dataclass(frozen=True)
class ShopState:
    orders: dict[str, Order]
    payments: list[Payment]
    ledger_sum: int
    unbalanced_payments: int
    # product id -> (initial, on hand, reserved, sold)
    stock: dict[str, tuple[int, int, int, int]]
    reservations: dict[str, Reservation]
    captures: list[Capture]
    quiet: bool


def _connect(settings: Settings, service: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(database_url(service, Topology("local", settings).postgres_addresses()))
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    return conn


def _rows(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()) -> list[Any]:
    return list(conn.execute(query, params).fetchall())


def _in_flight(settings: Settings) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """What is still moving (unsent events of orders and payments, held keys, attempts to
    release) and a fingerprint of the state that changes whenever anything is written."""
    moving: list[int] = []
    for service in ("orders", "payments"):
        with _connect(settings, service) as conn:
            moving += _rows(conn, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")[0]
    with _connect(settings, "orders") as conn:
        held, abandoned, history = _rows(
            conn,
            """SELECT (SELECT count(*) FROM idempotency_keys WHERE state = 'IN_FLIGHT'),
                      (SELECT count(*) FROM abandoned_attempts),
                      (SELECT count(*) FROM order_status_history)""",
        )[0]
    with _connect(settings, "payments") as conn:
        (ledger,) = _rows(conn, "SELECT count(*) FROM ledger_lines")[0]
    return (*moving, held, abandoned), (history, ledger)


def wait_until_quiet(settings: Settings, *, timeout: float) -> bool:
    """True once nothing is in flight and two readings a second apart agree."""
    deadline = time.monotonic() + timeout
    previous = _in_flight(settings)
    while time.monotonic() < deadline:
        time.sleep(1)
        current = _in_flight(settings)
        moving, _ = current
        if current == previous and not any(moving):
            return True
        previous = current
    return False


def read_state(settings: Settings, *, saga_timeout: float, settle_seconds: float) -> ShopState:
    quiet = wait_until_quiet(settings, timeout=settle_seconds)
    young = "created_at > now() - make_interval(secs => %s)"
    with _connect(settings, "orders") as conn:
        lines: dict[str, dict[str, int]] = {}
        for order_id, product, quantity in _rows(
            conn, "SELECT order_id::text, product_id, quantity FROM order_items"
        ):
            lines.setdefault(order_id, {})[product] = quantity
        orders = {
            r[0]: Order(r[0], r[1], r[2], r[3], r[4], lines.get(r[0], {}))
            for r in _rows(
                conn,
                f"SELECT id::text, user_id::text, status, total_cents, {young} FROM orders",
                (saga_timeout,),
            )
        }
    with _connect(settings, "payments") as conn:
        payments = [
            Payment(*r)
            for r in _rows(
                conn,
                "SELECT id::text, order_id::text, status, amount_cents, psp_charge_id "
                "FROM payments",
            )
        ]
        ledger_sum, unbalanced = _rows(
            conn,
            """SELECT coalesce(sum(amount_cents), 0),
                      (SELECT count(*) FROM (SELECT payment_id FROM ledger_lines
                       GROUP BY payment_id HAVING sum(amount_cents) <> 0) u)
               FROM ledger_lines""",
        )[0]
    with _connect(settings, "cart") as conn:
        stock = {
            r[0]: (r[1], r[2], r[3], r[4])
            for r in _rows(
                conn,
                """SELECT p.id, p.initial_stock, p.stock,
                      coalesce(sum(r.quantity) FILTER (WHERE o.status = 'RESERVED'), 0),
                      coalesce(sum(r.quantity) FILTER (WHERE o.status = 'SOLD'), 0)
                   FROM products p LEFT JOIN reservation_lines r ON r.product_id = p.id
                   LEFT JOIN stock_orders o ON o.order_id = r.order_id GROUP BY p.id""",
            )
        }
        held: dict[str, dict[str, int]] = {}
        for order_id, product, quantity in _rows(
            conn, "SELECT order_id::text, product_id, quantity FROM reservation_lines"
        ):
            held.setdefault(order_id, {})[product] = quantity
        reservations = {
            r[0]: Reservation(r[1], r[2], held.get(r[0], {}))
            for r in _rows(
                conn,
                f"SELECT order_id::text, status, {young} FROM stock_orders",
                (saga_timeout,),
            )
        }
    url = f"http://127.0.0.1:{settings['PSP_PORT']}/v1/captures"
    captures = [
        Capture(c["id"], c["reference"], c["amount_cents"], c.get("refunded_cents", 0))
        for c in httpx.get(url, timeout=10).json()
    ]
    return ShopState(
        orders=orders,
        payments=payments,
        ledger_sum=ledger_sum,
        unbalanced_payments=unbalanced,
        stock=stock,
        reservations=reservations,
        captures=captures,
        quiet=quiet,
    )
