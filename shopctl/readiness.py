"""Is each part of the local stack answering? Used to wait during `up` and by `status`."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from shopctl import redis_cluster
from shopctl.progress import StackError, say
from shopctl.topology import PROXIED, PostgresMember, Settings, Topology
from shopctl.toxiproxy import proxy_names


def _tcp_open(port: str) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", int(port))) == 0


def postgres_primary(topology: Topology) -> bool:
    """A member takes writes: Patroni has elected a primary and it answers."""
    import psycopg

    try:
        with psycopg.connect(topology.postgres_admin_url(), connect_timeout=1) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _patroni_member(member: PostgresMember) -> bool:
    """Patroni answers 200 on /health while its Postgres server runs, as primary or
    replica."""
    return _http_ok(f"http://{member.host}:{member.api_port}/health")


def _kafka(address: str) -> bool:
    """The node at `address` answers a metadata request."""
    from shopctl.kafka_admin import cluster_answers

    return cluster_answers(address)


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _consul(port: int) -> bool:
    """The agent or server on `port` answers and knows a leader."""
    try:
        leader = httpx.get(f"http://127.0.0.1:{port}/v1/status/leader", timeout=1.0)
    except httpx.HTTPError:
        return False
    return leader.status_code == 200 and leader.json() != ""


def _toxiproxy(settings: Settings) -> bool:
    """Answers, with every proxy the services use in place and letting traffic through."""
    try:
        found = httpx.get(f"http://127.0.0.1:{settings['TOXIPROXY_PORT']}/proxies", timeout=1.0)
        proxies = found.json() if found.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        return False
    topology = Topology("local", settings)
    names = [name for link in PROXIED for name in proxy_names(topology, link)]
    return all(proxies.get(name, {}).get("enabled") for name in names)


def infra_checks(settings: Settings) -> dict[str, bool]:
    topology = Topology("local", settings)
    servers = topology.consul_servers()
    return {
        "consul": _consul(settings.port("CONSUL_HTTP_PORT")),
        **{server.name: _consul(server.http_port) for server in servers},
        "toxiproxy": _toxiproxy(settings),
        **{m.name: _patroni_member(m) for m in topology.postgres_members()},
        **{n.name: redis_cluster.answers(n) for n in topology.redis_nodes()},
        **{n.name: _kafka(f"{n.host}:{n.port}") for n in topology.kafka_nodes()},
        "psp": _http_ok(f"http://127.0.0.1:{settings['PSP_PORT']}/health"),
    }


def _consul_passing(settings: Settings, services: set[str]) -> set[str]:
    passing: set[str] = set()
    for service in services:
        try:
            entries = httpx.get(
                f"http://127.0.0.1:{settings['CONSUL_HTTP_PORT']}/v1/health/service/{service}",
                params={"passing": "1"},
                timeout=1.0,
            ).json()
        except (httpx.HTTPError, ValueError):
            continue
        passing |= {entry["Service"]["ID"] for entry in entries}
    return passing


def instance_checks(topology: Topology, upstreams: Path | None = None) -> dict[str, bool]:
    """An instance is ready when it says so, Consul has it passing, and (when the
    gateway's rendered upstreams are given) the gateway routes to it."""
    instances = topology.instances()
    passing = _consul_passing(topology.settings, {i.service for i in instances})
    routed = upstreams.read_text() if upstreams and upstreams.exists() else None
    return {
        instance.id: instance.id in passing
        and (routed is None or f"server {instance.address} " in routed)
        and _http_ok(f"http://{instance.address}/health/ready")
        for instance in instances
    }


def gateway_check(settings: Settings) -> dict[str, bool]:
    return {"gateway": _http_ok(f"http://127.0.0.1:{settings['GATEWAY_PORT']}/health")}


def monitoring_checks(settings: Settings) -> dict[str, bool]:
    return {
        "prometheus": _http_ok(f"http://127.0.0.1:{settings['PROMETHEUS_PORT']}/-/ready"),
        "alertmanager": _http_ok(f"http://127.0.0.1:{settings['ALERTMANAGER_PORT']}/-/ready"),
        # grafana-server when one is on PATH, else the gateway's dashboards page.
        "grafana": _http_ok(f"http://127.0.0.1:{settings['GRAFANA_PORT']}/api/health"),
    }


def edge_checks(settings: Settings) -> dict[str, bool]:
    return {**gateway_check(settings), **monitoring_checks(settings)}


# Each exporter's program name -> the `.env` port of its /metrics.
# (Postgres has one per member: Topology.postgres_exporters.)
EXPORTER_PORTS = {
    "redis-exporter": "REDIS_EXPORTER_PORT",
    "node-exporter": "NODE_EXPORTER_PORT",
    "nginx-exporter": "NGINX_EXPORTER_PORT",
}


def exporter_checks(settings: Settings) -> dict[str, bool]:
    """For `status` only: `up` does not wait on exporters, Prometheus reports them."""
    ports = {name: settings.port(var) for name, var in EXPORTER_PORTS.items()}
    ports |= {name: port for name, _, port in Topology("local", settings).postgres_exporters()}
    return {name: _http_ok(f"http://127.0.0.1:{port}/metrics") for name, port in ports.items()}


def wait_until(check: Callable[[], dict[str, bool]], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last_waiting: list[str] = []
    while True:
        waiting = [name for name, ok in check().items() if not ok]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise StackError(
                f"{what} not ready after {timeout:.0f}s; still waiting for: "
                f"{', '.join(waiting)} (see .run/logs/<name>.log, or `make logs`)"
            )
        if waiting != last_waiting:
            say(f"waiting for: {', '.join(waiting)}")
            last_waiting = waiting
        time.sleep(0.5)


# The saga's consumer groups, each named after the service whose instances are its members.
SAGA_GROUPS = ("orders", "payments")


def saga_group_checks(settings: Settings) -> dict[str, bool]:
    """Each saga group is Stable with one member per instance of its service. A group that
    is still forming (after `make up`, or after Kafka came back) holds its events back, so
    a load run or a sale measured then would measure the rebalance, not the shop."""
    from shopctl.kafka_admin import stable_members

    bootstrap = Topology("local", settings).kafka_bootstrap()
    members = stable_members(bootstrap, SAGA_GROUPS)
    return {
        group: members[group] == int(settings[f"{group.upper()}_INSTANCES"])
        for group in SAGA_GROUPS
    }


def wait_for_saga(settings: Settings, timeout: float = 120) -> None:
    wait_until(
        lambda: saga_group_checks(settings), timeout=timeout, what="The saga's consumer groups"
    )
