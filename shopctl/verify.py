"""`make verify`: the platform's invariants (ARCHITECTURE.md), read from the real state:
orders', payments' and cart's databases and the card processor's own ledger. Each is
reported with its counts; the exit status is 0 only when all hold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import psycopg

from shopctl.topology import Settings, database_url

SAGA_TIMEOUT_SECONDS = 60  # orders younger than this may still be PENDING


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _one(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row if len(row) > 1 else row[0]


def _all(conn: psycopg.Connection[Any], query: str) -> list[Any]:
    return list(conn.execute(query).fetchall())


def _connect(settings: Settings, service: str) -> psycopg.Connection[Any]:
    return psycopg.connect(database_url(service, "127.0.0.1", int(settings["POSTGRES_PORT"])))


def check_all(settings: Settings) -> list[Check]:
    with _connect(settings, "orders") as orders:
        status_counts = dict(_all(orders, "SELECT status, count(*) FROM orders GROUP BY status"))
        stranded = _one(
            orders,
            "SELECT count(*) FROM orders WHERE status = 'PENDING' "
            "AND created_at < now() - make_interval(secs => %s)",
            (SAGA_TIMEOUT_SECONDS,),
        )
        confirmed: dict[str, int] = dict(
            _all(orders, "SELECT id::text, total_cents FROM orders WHERE status = 'CONFIRMED'")
        )
        cancelled = {
            r[0] for r in _all(orders, "SELECT id::text FROM orders WHERE status = 'CANCELLED'")
        }
    with _connect(settings, "payments") as payments:
        ledger_total, unbalanced = _one(
            payments,
            """SELECT coalesce(sum(amount_cents), 0),
                      (SELECT count(*) FROM (SELECT payment_id FROM ledger_lines
                       GROUP BY payment_id HAVING sum(amount_cents) <> 0) u)
               FROM ledger_lines""",
        )
        succeeded = _one(payments, "SELECT count(*) FROM payments WHERE status = 'SUCCEEDED'")
    with _connect(settings, "cart") as cart:
        stock = _all(
            cart,
            """SELECT p.id, p.initial_stock, p.stock,
                      coalesce(sum(r.quantity) FILTER (WHERE o.status = 'RESERVED'), 0),
                      coalesce(sum(r.quantity) FILTER (WHERE o.status = 'SOLD'), 0)
               FROM products p LEFT JOIN reservation_lines r ON r.product_id = p.id
               LEFT JOIN stock_orders o ON o.order_id = r.order_id GROUP BY p.id""",
        )
        reservation: dict[str, str] = dict(
            _all(cart, "SELECT order_id::text, status FROM stock_orders")
        )

    per_reference = _captures_by_reference(settings)
    shop_captures = {
        ref: per_reference[ref] for ref in per_reference if ref in confirmed or ref in cancelled
    }
    captured_cents = sum(amount for amounts in shop_captures.values() for amount in amounts)
    doubled = {ref: len(a) for ref, a in shop_captures.items() if len(a) > 1}
    negative = [p for p, _initial, on_hand, *_ in stock if on_hand < 0]
    unaccounted = [p for p, initial, on_hand, res, sold in stock if initial != on_hand + res + sold]
    wrong_reservations = [o for o in confirmed if reservation.get(o) != "SOLD"]
    wrong_reservations += [o for o in cancelled if reservation.get(o) not in (None, "RELEASED")]
    cancelled_kept = [o for o in cancelled if o in shop_captures]
    total_orders = sum(status_counts.values())
    return [
        Check(
            "every order is terminal or younger than the saga timeout",
            stranded == 0,
            f"{total_orders} orders: {status_counts}; {stranded} PENDING for over "
            f"{SAGA_TIMEOUT_SECONDS}s",
        ),
        Check(
            "at most one capture per order (the processor's ledger)",
            not doubled,
            f"{sum(len(a) for a in shop_captures.values())} captures for "
            f"{len(shop_captures)} orders; charged more than once: {doubled or 'none'}",
        ),
        Check(
            "captured money equals the totals of confirmed orders",
            captured_cents == sum(confirmed.values()),
            f"captured {captured_cents} cents; confirmed orders total "
            f"{sum(confirmed.values())} cents",
        ),
        Check(
            "cancelled orders keep nothing",
            not cancelled_kept,
            f"{len(cancelled)} cancelled; with a capture: {len(cancelled_kept)}",
        ),
        Check(
            "the ledger balances",
            ledger_total == 0 and unbalanced == 0,
            f"{succeeded} successful payments; ledger sum {ledger_total}; "
            f"unbalanced payments {unbalanced}",
        ),
        Check(
            "no oversell: stock never negative",
            not negative,
            f"{len(stock)} products; negative: {negative or 'none'}",
        ),
        Check(
            "stock accounted for: initial = on hand + reserved + sold",
            not unaccounted,
            f"{len(stock)} products; off: {unaccounted or 'none'}",
        ),
        Check(
            "confirmed orders' stock is sold, cancelled orders' released",
            not wrong_reservations,
            f"mismatched: {len(wrong_reservations)}",
        ),
    ]


def _captures_by_reference(settings: Settings) -> dict[str, list[int]]:
    """The processor's own record of captured amounts, per reference (an order id)."""
    url = f"http://127.0.0.1:{settings['PSP_PORT']}/v1/captures"
    found: dict[str, list[int]] = {}
    for capture in httpx.get(url, timeout=10).json():
        found.setdefault(capture["reference"], []).append(capture["amount_cents"])
    return found


def report(settings: Settings) -> int:
    checks = check_all(settings)
    for check in checks:
        print(f"{'ok  ' if check.ok else 'FAIL'}  {check.name}\n      {check.detail}")
    failed = [c for c in checks if not c.ok]
    print(f"\n{len(checks) - len(failed)} of {len(checks)} invariants hold.")
    return 1 if failed else 0
