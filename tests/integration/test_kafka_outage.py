"""Kafka killed under checkout load: orders keep being accepted (their events wait in the
outbox), every one is confirmed once the broker is back, and a record nobody can decode is
dead-lettered instead of blocking its partition."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import httpx
import pytest

from shopctl.chaos.actions import kill_and_hold
from shopctl.chaos.target import Target, use
from shopctl.kafka_admin import cluster_answers
from shopctl.local import LocalStack
from shopctl.readiness import SAGA_GROUPS, saga_group_checks
from tests.integration.faults import admin, dead_letters, wait_for
from tests.integration.kafka_io import partitions, produce
from tests.integration.test_auth import bearer, login, new_user
from tests.integration.test_checkout import checkout, shopper, wait_status

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PRODUCTS = ["steel-desk", "steel-chair", "steel-lamp", "steel-shelf"]


def _kafka(stack: LocalStack) -> list[str]:
    return [node.name for node in stack.topology.kafka_nodes()]


def _kill_and_hold(stack: LocalStack, names: list[str]) -> None:
    """SIGKILL, then keep supervisord from starting them again until `start`."""
    use(Target("local", stack))
    kill_and_hold(names)


def _start(stack: LocalStack, names: list[str]) -> None:
    for name in names:
        stack.supervisor.start(name)


def _ready(instance_address: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"http://{instance_address}/health/ready", timeout=5).json()
    return body


def test_checkout_keeps_answering_202_while_kafka_is_down(stack: LocalStack) -> None:
    gateway = f"http://127.0.0.1:{stack.settings['GATEWAY_PORT']}"
    with httpx.Client(base_url=gateway, timeout=30) as setup:
        staff = admin(setup, stack)
        for product in PRODUCTS:
            setup.patch(f"/products/{product}", json={"stock": 500}, headers=staff)
        users = [bearer(login(setup, new_user(setup))["access_token"]) for _ in range(4)]

    placed: list[tuple[dict[str, str], str]] = []
    refused: list[str] = []
    latencies: list[float] = []
    stop = threading.Event()

    def shop(n: int) -> None:
        with httpx.Client(base_url=gateway, timeout=30) as client:
            while not stop.is_set():
                product = PRODUCTS[n]
                client.put(f"/cart/items/{product}", json={"quantity": 1}, headers=users[n])
                started = time.monotonic()
                answer = checkout(client, users[n], "tok_visa")
                latencies.append(time.monotonic() - started)
                if answer.status_code == 202:
                    placed.append((users[n], answer.json()["id"]))
                else:
                    refused.append(f"{answer.status_code} {answer.text[:120]}")
                time.sleep(0.1)

    shoppers = [threading.Thread(target=shop, args=(n,)) for n in range(len(users))]
    for thread in shoppers:
        thread.start()
    kafka_down = False
    try:
        time.sleep(3)
        _kill_and_hold(stack, _kafka(stack))
        kafka_down = True
        down_at = len(placed)
        time.sleep(5)
        # Orders and payments stay ready, and say Kafka is degraded.
        for instance in stack.topology.instances("orders"):
            body = _ready(instance.address)
            assert body["status"] == "ready" and body["checks"]["kafka"]["status"] == "degraded"
        time.sleep(15)
        during = len(placed) - down_at
    finally:
        if kafka_down:
            _start(stack, _kafka(stack))
        time.sleep(3)
        stop.set()
        for thread in shoppers:
            thread.join()
    print(f"\n{len(placed)} orders placed, {during} while Kafka was down; refused: {refused}")
    latencies.sort()
    print(
        f"POST /orders median {latencies[len(latencies) // 2] * 1000:.0f} ms, slowest "
        f"{latencies[-1] * 1000:.0f} ms"
    )
    assert refused == []
    assert during >= 20
    # Nothing waits on the broker on the request path, nor blocks the event loop for it.
    assert latencies[-1] < 5

    started = time.monotonic()
    with httpx.Client(base_url=gateway, timeout=30) as client:
        for user, order_id in placed:
            left = max(1.0, 180 - (time.monotonic() - started))
            assert wait_status(client, user, order_id, timeout=left)["status"] == "CONFIRMED"
    print(f"all confirmed {time.monotonic() - started:.1f}s after Kafka came back")
    stack.wait_ready()


def test_an_undecodable_record_is_dead_lettered_and_the_partition_moves_on(
    stack: LocalStack,
) -> None:
    gateway = f"http://127.0.0.1:{stack.settings['GATEWAY_PORT']}"
    bootstrap = stack.topology.kafka_bootstrap()
    key = uuid.uuid4().hex.encode() + b"\xff\xfe"
    for partition in range(partitions(bootstrap, "order-events")):
        produce(bootstrap, "order-events", [(key, b"\xff not json")], partition=partition)
    with httpx.Client(base_url=gateway, timeout=30) as gw:
        user = shopper(gw, product="steel-table")
        placed = checkout(gw, user, "tok_visa")
        assert placed.status_code == 202, placed.text
        order_id = placed.json()["id"]
        assert wait_status(gw, user, order_id, timeout=30)["status"] == "CONFIRMED"
    printable = key.decode(errors="replace")
    wait_for(
        lambda: dead_letters(stack, "order-events").count(printable) >= 1,
        20,
        "the undecodable records are dead-lettered",
    )


def _event_instances(stack: LocalStack) -> dict[str, int]:
    """Process id of every instance that consumes events, as supervisord started it."""
    names = {i.id for s in SAGA_GROUPS for i in stack.topology.instances(s)}
    return {p["name"]: p["pid"] for p in stack.supervisor.processes() if p["name"] in names}


def test_consumers_resume_after_kafka_restarts_without_restarting_the_instance(
    stack: LocalStack,
) -> None:
    before = _event_instances(stack)
    bootstrap = stack.topology.kafka_bootstrap()
    _kill_and_hold(stack, _kafka(stack))
    try:
        time.sleep(12)  # longer than a session: the broker forgets nothing, members reconnect
    finally:
        _start(stack, _kafka(stack))
    wait_for(lambda: cluster_answers(bootstrap), 60, "Kafka answers")
    resumed = wait_for(lambda: all(saga_group_checks(stack.settings).values()), 30, "stable")
    gateway = f"http://127.0.0.1:{stack.settings['GATEWAY_PORT']}"
    with httpx.Client(base_url=gateway, timeout=30) as gw:
        gw.patch("/products/steel-desk", json={"stock": 100}, headers=admin(gw, stack))
        user = shopper(gw, product="steel-desk")
        started = time.monotonic()
        placed = checkout(gw, user, "tok_visa")
        assert placed.status_code == 202, placed.text
        assert wait_status(gw, user, placed.json()["id"], timeout=30)["status"] == "CONFIRMED"
        confirmed = time.monotonic() - started
    print(f"\ngroups stable {resumed:.1f}s after Kafka answered; a checkout took {confirmed:.1f}s")
    assert resumed <= 10
    assert _event_instances(stack) == before, "an instance was restarted"


def test_consumer_groups_are_stable_soon_after_their_instances_start(stack: LocalStack) -> None:
    instances = [i.id for s in SAGA_GROUPS for i in stack.topology.instances(s)]
    for name in instances:
        stack.supervisor.stop(name)
    for name in instances:
        stack.supervisor.start(name)
    stack.wait_ready()
    stable = wait_for(lambda: all(saga_group_checks(stack.settings).values()), 30, "stable")
    print(f"\nsaga groups stable {stable:.1f}s after every instance was ready")
    assert stable <= 5
