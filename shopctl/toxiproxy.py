"""Toxiproxy on the network path between the services and what they depend on (Postgres,
Redis, Kafka and the card processor), so that chaos experiments can add latency, cut a
connection or slow the bandwidth of one link while the rest of the stack runs untouched.

Only the services' connections pass through it; shopctl, the exporters and the tests reach
each part directly, so that what checks a fault is not subject to it. Local mode builds
the server from its Go module (the version infra/toxiproxy/go.mod requires); Docker mode
runs the official image of the same version.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from shopctl.builds import Build
from shopctl.gobuild import BIN_DIR, go_job, required_versions
from shopctl.topology import PROXIED, ROOT, Topology

BUILD_MODULE = ROOT / "infra" / "toxiproxy"
MODULE = "github.com/Shopify/toxiproxy/v2"
VERSION = required_versions(BUILD_MODULE / "go.mod")[MODULE]
BINARY = BIN_DIR / "toxiproxy-server"


def toxiproxy_job() -> Build:
    return go_job(
        "toxiproxy",
        f"Toxiproxy {VERSION.removeprefix('v')} from its Go module",
        {f"{MODULE}/cmd/server": BINARY},
        BUILD_MODULE,
        first_time="first time: about a minute",
    )


def proxies(topology: Topology) -> list[dict[str, Any]]:
    """Toxiproxy's start-up configuration: one proxy per dependency (Kafka: per node),
    listening where the services are told the dependency is and forwarding to where it
    really is."""
    listen_host = "127.0.0.1" if topology.mode == "local" else "0.0.0.0"
    routes = []
    for link in PROXIED:
        if link == "kafka":
            routes += topology.kafka_proxies()
            continue
        if link == "postgres":
            routes += topology.postgres_proxies()
            continue
        if link == "redis":
            routes += topology.redis_proxies()
            continue
        _, listen_port = topology.service_address(link)
        upstream_host, upstream_port = topology.upstream_address(link)
        routes.append((link, f"_:{listen_port}", f"{upstream_host}:{upstream_port}"))
    return [
        {
            "name": name,
            "listen": f"{listen_host}:{listen.rsplit(':', 1)[1]}",
            "upstream": upstream,
            "enabled": True,
        }
        for name, listen, upstream in routes
    ]


def proxy_names(topology: Topology, link: str) -> list[str]:
    """The proxies of one link: Kafka's and Redis's are one per node, Postgres's one per
    member."""
    if link == "kafka":
        return [name for name, _, _ in topology.kafka_proxies()]
    if link == "postgres":
        return [name for name, _, _ in topology.postgres_proxies()]
    if link == "redis":
        return [name for name, _, _ in topology.redis_proxies()]
    return [link]


def proxies_json(topology: Topology) -> str:
    return json.dumps(proxies(topology), indent=2) + "\n"


class Toxiproxy:
    """Toxiproxy's HTTP API, as the chaos actions use it."""

    def __init__(self, api: str, timeout: float = 5.0) -> None:
        self.client = httpx.Client(base_url=api, timeout=timeout)

    def __enter__(self) -> Toxiproxy:
        return self

    def __exit__(self, *_: object) -> None:
        self.client.close()

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.is_error:
            raise RuntimeError(
                f"toxiproxy {response.request.method} {response.request.url.path}: "
                f"{response.status_code} {response.text.strip()}"
            )
        return response

    def add_toxic(
        self,
        proxy: str,
        kind: str,
        attributes: dict[str, float],
        *,
        stream: str = "downstream",
        toxicity: float = 1.0,
    ) -> str:
        """Add a toxic (latency, bandwidth, timeout, reset_peer, slow_close, slicer,
        limit_data) to one proxy; returns its name."""
        name = f"{kind}_{stream}"
        body = {
            "name": name,
            "type": kind,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": attributes,
        }
        self._check(self.client.post(f"/proxies/{proxy}/toxics", json=body))
        return name

    def reset(self) -> None:
        """Every proxy enabled and every toxic removed."""
        self._check(self.client.post("/reset"))
