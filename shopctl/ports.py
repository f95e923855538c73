"""Every port the local stack binds, with the `.env` variable that moves it, so a clash
is reported at once by name instead of as a crash deep in some log."""

from __future__ import annotations

import socket
import time

from shopctl.progress import StackError
from shopctl.topology import SERVICES, Topology

INFRA_PORT_VARS = (
    "GATEWAY_PORT",
    "PROMETHEUS_PORT",
    "GRAFANA_PORT",
    "POSTGRES_PORT",
    "REDIS_PORT",
    "KAFKA_PORT",
    "KAFKA_CONTROLLER_PORT",
    "CONSUL_HTTP_PORT",
    "CONSUL_SERF_LAN_PORT",
    "PSP_PORT",
    "ALERTMANAGER_PORT",
    "POSTGRES_EXPORTER_PORT",
    "REDIS_EXPORTER_PORT",
    "NODE_EXPORTER_PORT",
    "NGINX_EXPORTER_PORT",
    "NGINX_STATUS_PORT",
    "KAFKA_METRICS_PORT",
    "TOXIPROXY_PORT",
    "POSTGRES_PROXY_PORT",
    "PATRONI_API_PORT",
    "REDIS_PROXY_PORT",
    "REDIS_BUS_PORT",
    "KAFKA_PROXY_PORT",
    "KAFKA_PROXIED_PORT",
    "PSP_PROXY_PORT",
)
# Bound only while a load test runs (shopctl/load.py): Locust's figures and its web UI.
LOAD_PORT_VARS = ("LOCUST_METRICS_PORT", "LOCUST_WEB_PORT")


def stack_ports(topology: Topology) -> list[tuple[int, str]]:
    ports = [(topology.settings.port(var), var) for var in INFRA_PORT_VARS]
    for server in topology.consul_servers():
        ports += [
            (server.http_port, "CONSUL_SERVER_HTTP_PORT"),
            (server.rpc_port, "CONSUL_SERVER_RPC_PORT"),
            (server.serf_lan_port, "CONSUL_SERVER_SERF_LAN_PORT"),
        ]
    for member in topology.postgres_members()[1:]:
        ports += [
            (member.port, "POSTGRES_PORT"),
            (member.proxy_port, "POSTGRES_PROXY_PORT"),
            (member.api_port, "PATRONI_API_PORT"),
            (
                topology.settings.port("POSTGRES_EXPORTER_PORT") + member.index - 1,
                "POSTGRES_EXPORTER_PORT",
            ),
        ]
    for node in topology.redis_nodes()[1:]:
        ports += [
            (node.port, "REDIS_PORT"),
            (node.proxy_port, "REDIS_PROXY_PORT"),
            (node.bus_port, "REDIS_BUS_PORT"),
        ]
    for service in SERVICES:
        var = f"{service.upper()}_PORT"
        ports += [(instance.port, var) for instance in topology.instances(service)]
    return ports


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def check_ports_distinct(topology: Topology) -> None:
    seen: dict[int, str] = {}
    for port, var in stack_ports(topology):
        if not 0 < port < 65536:
            raise StackError(
                f"port {port} ({var}) is past 65535: lower {var} (the nodes of a cluster "
                "listen on it + n - 1)"
            )
        if port in seen and seen[port] != var:
            raise StackError(f"port {port} is given to both {seen[port]} and {var}; change one")
        seen[port] = var


def check_ports_free(topology: Topology) -> None:
    check_ports_distinct(topology)
    # Every taken port in one message, so that a user fixes them all in one go.
    taken = [(port, var) for port, var in stack_ports(topology) if not _bindable(port)]
    if taken:
        raise StackError(
            "; ".join(
                f"port {port} ({var}) is already in use on 127.0.0.1; free it, or run "
                f"with another port, e.g. `{var}={port + 1000} make up` (or edit .env)"
                for port, var in taken
            )
        )


def wait_ports_closed(topology: Topology, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        still = [f"{port} ({var})" for port, var in stack_ports(topology) if listening(port)]
        if not still:
            return
        if time.monotonic() > deadline:
            raise StackError(f"still listening after stop: {', '.join(still)}")
        time.sleep(0.2)
