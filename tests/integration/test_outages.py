import time
from typing import Any

import httpx
import pytest

from shopctl.local import LocalStack
from shopctl.topology import SERVICE_DEPENDENCIES

pytestmark = pytest.mark.integration


def _ready_bodies(stack: LocalStack) -> dict[str, tuple[int, dict[str, Any]]]:
    bodies = {}
    for instance in stack.topology.instances():
        response = httpx.get(f"http://{instance.address}/health/ready", timeout=5)
        bodies[instance.id] = (response.status_code, response.json())
    return bodies


def _pids(stack: LocalStack) -> dict[str, int]:
    return {p["name"]: p["pid"] for p in stack.supervisor.processes()}


def _wait_for(predicate: Any, timeout: float) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"not within {timeout}s"
        time.sleep(0.25)
    return time.monotonic() - started


def test_postgres_outage_is_reported_and_recovered_without_restarts(stack: LocalStack) -> None:
    users = [
        i.id for i in stack.topology.instances() if "postgres" in SERVICE_DEPENDENCIES[i.service]
    ]
    before = _pids(stack)
    members = [m.name for m in stack.topology.postgres_members()]
    for member in members:
        stack.supervisor.stop(member)
    try:
        _wait_for(lambda: all(code == 503 for code, _ in _ready_bodies(stack).values()), 15)
        started = time.monotonic()
        bodies = _ready_bodies(stack)
        # Fast, honest answers while the database is away: no hang, 503 naming Postgres.
        assert time.monotonic() - started < 8 * 2.5
        for instance_id in users:
            code, body = bodies[instance_id]
            assert code == 503
            assert body["checks"]["postgres"]["status"] == "down"
            if "redis" in SERVICE_DEPENDENCIES[instance_id.rsplit("-", 1)[0]]:
                assert body["checks"]["redis"]["status"] == "up"
    finally:
        for member in members:
            stack.supervisor.start(member)
    recovered_in = _wait_for(
        lambda: all(code == 200 for code, _ in _ready_bodies(stack).values()), 30
    )
    print(f"all instances ready again {recovered_in:.1f}s after Postgres came back")
    after = _pids(stack)
    # Nobody crashed or was restarted by supervisord: the same processes recovered.
    assert {i: after[i] for i in users} == {i: before[i] for i in users}
    stack.wait_ready()
    # Ready means able to serve: the instances' pools, whose connections died with
    # Postgres, hand out connections again (the catalog's pages are read from cart's
    # database, a login from auth's).
    gateway = f"http://127.0.0.1:{stack.settings['GATEWAY_PORT']}"
    for _ in range(4):
        page = httpx.get(f"{gateway}/products?limit=1", timeout=5)
        assert page.status_code == 200, page.text
    admin = {"email": stack.settings["ADMIN_EMAIL"], "password": stack.settings["ADMIN_PASSWORD"]}
    for _ in range(2):
        logged_in = httpx.post(f"{gateway}/auth/login", json=admin, timeout=5)
        assert logged_in.status_code == 200, logged_in.text


def test_a_slow_link_to_postgres_keeps_every_instance_in_the_gateway(stack: LocalStack) -> None:
    """500 ms on every answer from Postgres (Toxiproxy): every instance still answers
    its readiness check within Consul's 1 s, so none leaves the gateway, and the catalog
    keeps answering (slowly, or a fast 503 when a pool is exhausted), never all 503s."""
    from shopctl.toxiproxy import Toxiproxy, proxy_names

    gateway = f"http://127.0.0.1:{stack.settings['GATEWAY_PORT']}"
    product = httpx.get(f"{gateway}/products?limit=1", timeout=5).json()["items"][0]["id"]
    with Toxiproxy(f"http://127.0.0.1:{stack.settings['TOXIPROXY_PORT']}") as proxy:
        for name in proxy_names(stack.topology, "postgres"):
            proxy.add_toxic(name, "latency", {"latency": 500})
        try:
            time.sleep(5)  # two of Consul's checks, every 2 s
            bodies = _ready_bodies(stack)
            answers = [
                httpx.get(f"{gateway}/products/{product}", timeout=10).status_code for _ in range(5)
            ]
        finally:
            proxy.reset()
    assert all(code == 200 for code, _ in bodies.values()), bodies
    assert answers.count(200) >= 3, answers
    stack.wait_ready()
