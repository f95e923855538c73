"""Faults injected into the real stack for the saga's tests: database triggers that fail or
stall inserts, reads of a dead-letter topic, and handles on supervised processes."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg

from kit.kafka import printable
from shopctl.local import LocalStack
from shopctl.topology import database_url
from tests.integration.kafka_io import read_to_end
from tests.integration.test_auth import bearer, login

# A serialization failure: a transient fault as Postgres itself reports one.
TRANSIENT = "40001"


def dsn(stack: LocalStack, service: str) -> str:
    return database_url(service, stack.topology.postgres_addresses())


@contextmanager
def faulty_inserts(
    stack: LocalStack,
    service: str,
    table: str,
    *,
    times: int,
    sleep_seconds: float = 0.0,
    error: str | None = TRANSIENT,
) -> Iterator[None]:
    """The next `times` inserts into `table` sleep, then fail with `error` (None: go on).
    Counted with a sequence, which a rolled-back transaction does not undo."""
    name = f"fault_{uuid.uuid4().hex[:8]}"
    fail = f"RAISE EXCEPTION 'injected fault' USING ERRCODE = '{error}';" if error else ""
    with psycopg.connect(dsn(stack, service), autocommit=True) as conn:
        conn.execute(f"CREATE SEQUENCE {name}_n")
        conn.execute(
            f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF nextval('{name}_n') <= {times} THEN
                        PERFORM pg_sleep({sleep_seconds});
                        {fail}
                    END IF;
                    RETURN NEW;
                END $$"""
        )
        conn.execute(
            f"CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()"
        )
        try:
            yield
        finally:
            conn.execute(f"DROP TRIGGER {name} ON {table}")
            conn.execute(f"DROP FUNCTION {name}()")
            conn.execute(f"DROP SEQUENCE {name}_n")


def one(stack: LocalStack, service: str, query: str, params: tuple[Any, ...] = ()) -> Any:
    with psycopg.connect(dsn(stack, service), autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()
    return None if row is None else row[0] if len(row) == 1 else row


def reservation(stack: LocalStack, order_id: str) -> tuple[str | None, dict[str, int]]:
    """cart's own record of an order's stock: its status and the lines it holds."""
    with psycopg.connect(dsn(stack, "cart"), autocommit=True) as conn:
        status = conn.execute(
            "SELECT status FROM stock_orders WHERE order_id = %s", (order_id,)
        ).fetchone()
        lines = conn.execute(
            "SELECT product_id, quantity FROM reservation_lines WHERE order_id = %s", (order_id,)
        ).fetchall()
    return (status[0] if status else None), dict(lines)


def dead_letters(stack: LocalStack, topic: str) -> list[str]:
    """The keys of every record in `topic`'s dead-letter topic, read to its end."""
    bootstrap = stack.topology.kafka_bootstrap()
    return [printable(m.key()) for m in read_to_end(bootstrap, f"{topic}.dlq") if m.key()]


def pid_of(stack: LocalStack, name: str) -> int:
    return int(next(p["pid"] for p in stack.supervisor.processes() if p["name"] == name))


def admin(gw: httpx.Client, stack: LocalStack) -> dict[str, str]:
    tokens = login(gw, stack.settings["ADMIN_EMAIL"], stack.settings["ADMIN_PASSWORD"])
    return bearer(tokens["access_token"])


def wait_for(predicate: Any, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout}s"
        time.sleep(0.2)
    return time.monotonic() - started


def redis_cluster_client(stack: LocalStack) -> Any:
    """A cluster client on the nodes' own addresses (not through Toxiproxy)."""
    from redis.cluster import ClusterNode, RedisCluster

    nodes = [ClusterNode(n.host, n.port) for n in stack.topology.redis_nodes()]
    return RedisCluster(startup_nodes=nodes, decode_responses=True, socket_timeout=2)


class Repeating:
    """Calls `step` over and over in a thread of its own while the `with` block runs, as a
    user keeps using the shop while a test breaks something."""

    def __init__(self, step: Callable[[], None]) -> None:
        self._step = step
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._step()

    def __enter__(self) -> Repeating:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
