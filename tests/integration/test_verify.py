"""`make verify` on the real stack: it passes on what the other tests left, and it says so
when the state is deliberately broken, one invariant at a time."""

import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable

import psycopg
import pytest

from shopctl.local import LocalStack
from shopctl.topology import ROOT, database_url
from shopctl.verify import check_all

pytestmark = pytest.mark.integration

CAPTURES = "every capture is for a confirmed order, or refunded, or still in flight"
PAYMENTS = "payments agree with the processor's captures"


def run_verify(stack: LocalStack) -> subprocess.CompletedProcess[str]:
    ports = {k: stack.settings[k] for k in ("POSTGRES_PORT", "PSP_PORT", "GATEWAY_PORT")}
    return subprocess.run(
        [sys.executable, "-m", "shopctl", "verify"],
        cwd=ROOT,
        env={**os.environ, "MODE": "local", **ports},
        capture_output=True,
        text=True,
        check=False,
    )


def failing(stack: LocalStack) -> set[str]:
    return {check.name for check in check_all(stack.settings, settle_seconds=10) if not check.ok}


def dsn(stack: LocalStack, service: str) -> str:
    return database_url(service, stack.topology.postgres_addresses())


def broken_by(stack: LocalStack, service: str, breaks: str, mends: str) -> Callable[[], set[str]]:
    def attempt() -> set[str]:
        with psycopg.connect(dsn(stack, service), autocommit=True) as conn:
            conn.execute(breaks)
            try:
                return failing(stack)
            finally:
                conn.execute(mends)

    return attempt


def test_verify_passes_and_fails_when_the_state_is_broken(stack: LocalStack) -> None:
    assert failing(stack) == set()
    healthy = run_verify(stack)
    assert healthy.returncode == 0, healthy.stdout
    assert "invariants hold" in healthy.stdout

    with psycopg.connect(dsn(stack, "payments"), autocommit=True) as conn:
        payment = conn.execute(
            "SELECT id FROM payments WHERE status = 'SUCCEEDED' LIMIT 1"
        ).fetchone()
        assert payment is not None, "the checkout tests leave payments behind"
        conn.execute(
            "INSERT INTO ledger_lines (payment_id, account, amount_cents) VALUES (%s, 'oops', 1)",
            (payment[0],),
        )
        try:
            assert failing(stack) == {"the ledger balances"}
            broken = run_verify(stack)
            assert broken.returncode == 1
            assert "FAIL  the ledger balances" in broken.stdout
        finally:
            conn.execute("DELETE FROM ledger_lines WHERE account = 'oops'")
    paid = payment[0]

    assert broken_by(
        stack,
        "payments",
        f"UPDATE payments SET amount_cents = amount_cents + 1 WHERE id = '{paid}'",
        f"UPDATE payments SET amount_cents = amount_cents - 1 WHERE id = '{paid}'",
    )() == {PAYMENTS}

    assert broken_by(
        stack,
        "cart",
        "UPDATE products SET stock = stock + 1 WHERE id = 'oak-desk'",
        "UPDATE products SET stock = stock - 1 WHERE id = 'oak-desk'",
    )() == {"stock accounted for: initial = on hand + reserved + sold"}

    orphan = uuid.uuid4()
    assert broken_by(
        stack,
        "cart",
        f"""INSERT INTO stock_orders (order_id, status, outcome, created_at)
            VALUES ('{orphan}', 'RESERVED', '{{}}', now() - interval '1 hour')""",
        f"DELETE FROM stock_orders WHERE order_id = '{orphan}'",
    )() == {"no orphan reservations"}

    with psycopg.connect(dsn(stack, "orders"), autocommit=True) as conn:
        line = conn.execute(
            "SELECT i.order_id FROM order_items i JOIN orders o ON o.id = i.order_id "
            "WHERE o.status = 'CONFIRMED' LIMIT 1"
        ).fetchone()
        assert line is not None
    assert broken_by(
        stack,
        "orders",
        f"UPDATE order_items SET quantity = quantity + 1 WHERE order_id = '{line[0]}'",
        f"UPDATE order_items SET quantity = quantity - 1 WHERE order_id = '{line[0]}'",
    )() == {"every order's lines are the lines its reservation holds"}

    stranded = uuid.uuid4()
    assert (
        "every order is terminal or younger than the saga timeout"
        in broken_by(
            stack,
            "orders",
            f"""INSERT INTO orders (id, user_id, status, total_cents, currency, created_at,
                                last_requested_at)
            VALUES ('{stranded}', '{uuid.uuid4()}', 'PENDING', 100, 'EUR',
                    now() - interval '1 hour', now() + interval '1 hour')""",
            f"DELETE FROM orders WHERE id = '{stranded}'",
        )()
    )

    # Money taken for no order, in the processor's own books.
    ledger = ROOT / ".run" / "test-stack" / "psp" / "ledger.sqlite3"
    charge = f"ch_verify_{uuid.uuid4().hex[:8]}"
    with sqlite3.connect(ledger) as books:
        books.execute(
            "INSERT INTO captures (id, reference, amount_cents, currency) "
            "VALUES (?, ?, 500, 'EUR')",
            (charge, str(uuid.uuid4())),
        )
    try:
        assert failing(stack) == {CAPTURES, PAYMENTS}
    finally:
        with sqlite3.connect(ledger) as books:
            books.execute("DELETE FROM captures WHERE id = ?", (charge,))
    assert failing(stack) == set()
