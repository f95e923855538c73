"""Postgres runs as a primary and a synchronous replica under Patroni. The primary's
server is killed while checkouts go on: Patroni promotes the replica, the services find it
through their multi-host URL with no restart, writes resume within the issue's 15 s,
every order acknowledged (a 202) is still there and ends confirmed, no invariant breaks,
and the old primary comes back as a replica of the new one."""

from __future__ import annotations

import time
import uuid

import httpx
import psycopg
import pytest

from shopctl.chaos import failover
from shopctl.chaos.run import lost_orders
from shopctl.chaos.target import Target, use
from shopctl.clusters import Postgres
from shopctl.local import LocalStack
from shopctl.verify import check_all
from tests.integration.faults import Repeating, admin
from tests.integration.test_checkout import checkout, shopper, wait_status

pytestmark = pytest.mark.integration

PRODUCT = "oak-chair"


def _replication(stack: LocalStack) -> list[tuple[str, str, str]]:
    with psycopg.connect(stack.topology.postgres_admin_url()) as conn:
        rows = conn.execute(
            "SELECT application_name, state, sync_state FROM pg_stat_replication"
        ).fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def test_the_primary_streams_to_a_synchronous_replica(stack: LocalStack) -> None:
    cluster = Postgres(stack.topology)
    leader = cluster.leader()
    assert leader is not None
    (replica,) = [m for m in cluster.members() if m != leader]
    assert cluster.followers() == [replica]
    # A commit waits for this replica: it is the synchronous standby, streaming.
    assert _replication(stack) == [(replica, "streaming", "sync")]


class Checkouts(Repeating):
    """Shoppers checking out one after another, as a user would: what the gateway
    answered to each, and the orders it acknowledged."""

    def __init__(self, gw: httpx.Client, users: list[dict[str, str]]) -> None:
        super().__init__(self._one)
        self.gw, self.users = gw, users
        self.acknowledged: dict[str, dict[str, str]] = {}
        self.refused: list[tuple[int, str | None, float]] = []
        self.resent = 0
        self._next = 0

    def _one(self) -> None:
        user = self.users[self._next % len(self.users)]
        self._next += 1
        started = time.monotonic()
        key = str(uuid.uuid4())
        try:
            try:
                answer = self._fill_and_check_out(user, key)
            except (httpx.RemoteProtocolError, httpx.ReadError):
                # An instance leaving or joining reloads nginx, whose old worker closes its
                # kept-alive connections: one already on its way meets the close unread.
                # Sent again once, as a browser would; the key keeps it one order.
                self.resent += 1
                answer = self._fill_and_check_out(user, key)
        except httpx.HTTPError as error:
            self.refused.append((0, type(error).__name__, time.monotonic() - started))
            return
        if answer.status_code == 202:
            self.acknowledged[answer.json()["id"]] = user
        else:
            retry = answer.headers.get("retry-after")
            self.refused.append((answer.status_code, retry, time.monotonic() - started))
            time.sleep(0.2)

    def _fill_and_check_out(self, user: dict[str, str], key: str) -> httpx.Response:
        # A checkout empties the cart: each one fills it again first (the cart checks the
        # stock in Postgres, so that may be refused too).
        answer = self.gw.put(f"/cart/items/{PRODUCT}", json={"quantity": 1}, headers=user)
        if answer.status_code != 200:
            return answer
        return checkout(self.gw, user, "tok_visa", key=key)


def test_the_primary_dies_writes_resume_nothing_acknowledged_is_lost_and_it_rejoins(
    stack: LocalStack, gw: httpx.Client
) -> None:
    use(Target("local", stack))
    cluster = Postgres(stack.topology)
    before = cluster.leader()
    # Enough chairs for every checkout the test places, whatever earlier tests sold.
    restock = gw.patch(f"/products/{PRODUCT}", json={"stock": 500}, headers=admin(gw, stack))
    assert restock.status_code == 200, restock.text
    users = [shopper(gw, product=PRODUCT) for _ in range(4)]
    with Checkouts(gw, users) as flow:
        time.sleep(2)
        acknowledged_before = len(flow.acknowledged)
        killed = failover.kill_leader("postgres", within_seconds=30)
        time.sleep(3)
    back = failover.bring_back("postgres", within_seconds=60)

    assert acknowledged_before > 0
    assert killed["killed"] == before
    assert killed["new_leader"] not in (None, before)
    assert killed["writes_resumed_s"] is not None and killed["writes_resumed_s"] < 15
    # In between, a checkout got a fast, honest 503 (or went through), never a hang.
    assert [r for r in flow.refused if r[0] != 503 or not r[1] or r[2] >= 10] == []
    # Every acknowledged order was committed on both copies, so it survived the primary.
    assert lost_orders(stack.settings, list(flow.acknowledged)) == []
    for order_id, user in flow.acknowledged.items():
        assert wait_status(gw, user, order_id, timeout=60)["status"] == "CONFIRMED"
    assert before in back["following"]
    assert Postgres(stack.topology).leader() == killed["new_leader"]
    failed = [c for c in check_all(stack.settings) if not c.ok]
    assert failed == [], failed
    print(
        f"\nPostgres primary {before} killed: writes again after "
        f"{killed['writes_resumed_s']:.1f}s ({killed['writes_refused']} refused), "
        f"{killed['new_leader']} leads; {len(flow.acknowledged)} checkouts acknowledged, "
        f"{len(flow.refused)} refused with a 503, {flow.resent} sent again after a closed "
        f"connection; {before} follows again"
    )
