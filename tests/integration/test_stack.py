import time
from pathlib import Path

import httpx
import psycopg
import pytest
import redis

from kit.migrations import MigrationError, apply_migrations, load_migrations
from shopctl.local import LocalStack
from shopctl.topology import ROOT, SERVICE_DEPENDENCIES, SERVICES, database_url

pytestmark = pytest.mark.integration


def gateway(stack: LocalStack) -> str:
    return f"http://127.0.0.1:{stack.settings['GATEWAY_PORT']}"


def test_every_instance_is_ready_and_names_its_dependencies(stack: LocalStack) -> None:
    instances = stack.topology.instances()
    assert len(instances) == 8
    for instance in instances:
        response = httpx.get(f"http://{instance.address}/health/ready")
        assert response.status_code == 200, response.text
        checks = response.json()["checks"]
        assert set(checks) == set(SERVICE_DEPENDENCIES[instance.service])
        assert all(check["status"] == "up" for check in checks.values())
    assert httpx.get(f"{gateway(stack)}/health").status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/metrics", "/internal/stock", "/cart/health/ready", "/auth/metrics", "/orders/internal/x"],
)
def test_gateway_never_exposes_internals(stack: LocalStack, path: str) -> None:
    assert httpx.get(gateway(stack) + path).status_code == 404


def test_gateway_routes_to_the_service_and_passes_the_request_id(stack: LocalStack) -> None:
    request_id = f"it-{time.time_ns()}"
    response = httpx.get(
        f"{gateway(stack)}/orders/no/such/route", headers={"X-Request-ID": request_id}
    )
    # The service (not nginx) answered: a problem+json 404 with our id echoed.
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == request_id

    def logged() -> bool:
        # Access lines reach the log in batches, within half a second (kit.logging).
        logs = "".join(p.read_text() for p in (stack.run / "logs").glob("orders-*.log"))
        return f'"request_id":"{request_id}"' in logs

    deadline = time.monotonic() + 5
    while not logged() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert logged()


def test_every_redis_node_keeps_an_append_only_file(stack: LocalStack) -> None:
    for node in stack.topology.redis_nodes():
        with redis.Redis(host=node.host, port=node.port, decode_responses=True) as client:
            assert client.config_get("appendonly") == {"appendonly": "yes"}, node.name


def test_prometheus_scrapes_every_instance(stack: LocalStack) -> None:
    url = f"http://127.0.0.1:{stack.settings['PROMETHEUS_PORT']}/api/v1/targets"
    expected = {i.id for i in stack.topology.instances()}
    deadline = time.monotonic() + 30
    up: set[str] = set()
    while time.monotonic() < deadline:
        targets = httpx.get(url).json()["data"]["activeTargets"]
        up = {
            t["labels"]["instance_id"]
            for t in targets
            if t["health"] == "up" and "instance_id" in t["labels"]
        }
        if up == expected:
            break
        time.sleep(1)
    assert up == expected


def _connect(stack: LocalStack, service: str) -> psycopg.Connection:
    return psycopg.connect(database_url(service, stack.topology.postgres_addresses()))


def test_each_service_has_its_own_migrated_database(stack: LocalStack) -> None:
    for service in SERVICES:
        expected = load_migrations(ROOT / "services" / service / "migrations")
        with _connect(stack, service) as conn:
            rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
        # Two instances raced to migrate at start-up; each file was applied exactly once.
        assert [r[0] for r in rows] == [m.version for m in expected]


async def test_migrations_apply_once_and_refuse_edits(stack: LocalStack, tmp_path: Path) -> None:
    dsn = database_url("cart", stack.topology.postgres_addresses())
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("DROP SCHEMA IF EXISTS migtest CASCADE")
        await conn.execute("CREATE SCHEMA migtest")
        await conn.execute("SET search_path TO migtest")
        try:
            (tmp_path / "0001_t.sql").write_text("CREATE TABLE t (id int);")
            (tmp_path / "0002_u.sql").write_text(
                "INSERT INTO t VALUES (1); INSERT INTO t VALUES (2);"
            )
            assert await apply_migrations(conn, load_migrations(tmp_path)) == ["0001_t", "0002_u"]
            assert await apply_migrations(conn, load_migrations(tmp_path)) == []
            count = await (await conn.execute("SELECT count(*) FROM t")).fetchone()
            assert count == (2,)

            (tmp_path / "0002_u.sql").write_text("INSERT INTO t VALUES (3);")
            with pytest.raises(MigrationError, match="changed after it was applied"):
                await apply_migrations(conn, load_migrations(tmp_path))

            # A failing migration leaves nothing behind: not its table, not its row.
            (tmp_path / "0002_u.sql").write_text(
                "INSERT INTO t VALUES (1); INSERT INTO t VALUES (2);"
            )
            (tmp_path / "0003_bad.sql").write_text("CREATE TABLE v (id int); SELECT nope;")
            with pytest.raises(psycopg.errors.UndefinedColumn):
                await apply_migrations(conn, load_migrations(tmp_path))
            missing = await (await conn.execute("SELECT to_regclass('migtest.v')")).fetchone()
            assert missing == (None,)
        finally:
            await conn.execute("DROP SCHEMA migtest CASCADE")
