"""`make verify` on the real stack: it passes on what the other tests left, and it says so
when the state is deliberately broken."""

import os
import subprocess
import sys
import uuid

import psycopg
import pytest

from shopctl.local import LocalStack
from shopctl.topology import ROOT, database_url
from shopctl.verify import check_all

pytestmark = pytest.mark.integration


def run_verify(stack: LocalStack) -> subprocess.CompletedProcess[str]:
    ports = {k: stack.settings[k] for k in ("POSTGRES_PORT", "PSP_PORT")}
    return subprocess.run(
        [sys.executable, "-m", "shopctl", "verify"],
        cwd=ROOT,
        env={**os.environ, "MODE": "local", **ports},
        capture_output=True,
        text=True,
        check=False,
    )


def failing(stack: LocalStack) -> set[str]:
    return {check.name for check in check_all(stack.settings) if not check.ok}


def test_verify_passes_and_fails_when_the_state_is_broken(stack: LocalStack) -> None:
    assert failing(stack) == set()
    healthy = run_verify(stack)
    assert healthy.returncode == 0, healthy.stdout
    assert "invariants hold" in healthy.stdout

    dsn = database_url("payments", "127.0.0.1", int(stack.settings["POSTGRES_PORT"]))
    with psycopg.connect(dsn, autocommit=True) as conn:
        payment = conn.execute("SELECT id FROM payments LIMIT 1").fetchone()
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

    cart = database_url("cart", "127.0.0.1", int(stack.settings["POSTGRES_PORT"]))
    with psycopg.connect(cart, autocommit=True) as conn:
        conn.execute("UPDATE products SET stock = stock + 1 WHERE id = 'oak-desk'")
        try:
            assert failing(stack) == {"stock accounted for: initial = on hand + reserved + sold"}
        finally:
            conn.execute("UPDATE products SET stock = stock - 1 WHERE id = 'oak-desk'")

    orders = database_url("orders", "127.0.0.1", int(stack.settings["POSTGRES_PORT"]))
    stranded = uuid.uuid4()
    with psycopg.connect(orders, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO orders (id, user_id, status, total_cents, currency, created_at,
                                   last_requested_at)
               VALUES (%s, %s, 'PENDING', 100, 'EUR', now() - interval '1 hour',
                       now() + interval '1 hour')""",
            (stranded, uuid.uuid4()),
        )
        try:
            assert "every order is terminal or younger than the saga timeout" in failing(stack)
        finally:
            conn.execute("DELETE FROM orders WHERE id = %s", (stranded,))
    assert failing(stack) == set()
