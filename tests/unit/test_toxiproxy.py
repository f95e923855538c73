"""Toxiproxy sits between every service and what it depends on, in both modes: each
address a service is given is a proxy, and each proxy forwards to the real part (Kafka's
to the listener that advertises the proxy, so reconnections pass it too)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import yaml

from shopctl import render
from shopctl.topology import (
    KAFKA_MIN_INSYNC,
    KAFKA_NODES,
    POSTGRES_MEMBERS,
    REDIS_SHARDS,
    ROOT,
    Topology,
)
from shopctl.toxiproxy import proxies

pytestmark = pytest.mark.unit


def _dependency_addresses(env: dict[str, str]) -> set[str]:
    found = set()
    for key in ("DATABASE_URL", "PSP_URL"):
        if key in env:
            # A multi-host URL (Postgres) names several, comma-separated.
            found |= set(urlsplit(env[key]).netloc.rsplit("@", 1)[-1].split(","))
    for key in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_CLUSTER_NODES"):
        if key in env:
            found |= set(env[key].split(","))
    if "REDIS_ADDRESS_MAP" in env:
        found |= {pair.split("=")[1] for pair in env["REDIS_ADDRESS_MAP"].split(",")}
    return found


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")
    return {key: value for key, value in pairs}


def _listeners(value: str) -> dict[str, str]:
    """A listeners setting (`NAME://host:port,...`) as name -> host:port."""
    pairs = (item.split("://", 1) for item in value.split(","))
    return {name: address for name, address in pairs}


@pytest.mark.parametrize("mode", ["local", "docker"])
def test_every_dependency_address_a_service_gets_is_a_proxy(mode: str) -> None:
    topology = Topology.load(mode)  # type: ignore[arg-type]
    host = "127.0.0.1" if mode == "local" else "toxiproxy"
    listening = {f"{host}:{p['listen'].rsplit(':', 1)[1]}" for p in proxies(topology)}
    kafka = [f"kafka-{n}" for n in range(1, KAFKA_NODES + 1)]
    postgres = [f"postgres-{n}" for n in range(1, POSTGRES_MEMBERS + 1)]
    redis = [f"redis-{n}" for n in range(1, 2 * REDIS_SHARDS + 1)]
    assert [p["name"] for p in proxies(topology)] == [*postgres, *redis, *kafka, "psp"]
    assert len(listening) == len(proxies(topology)), "two proxies listen on one port"
    for instance in topology.instances():
        addresses = _dependency_addresses(topology.instance_env(instance))
        assert addresses and addresses <= listening, instance.id
        if "KAFKA_BOOTSTRAP_SERVERS" in topology.instance_env(instance):
            # Any node bootstraps a client, and each node's proxy is one of them.
            bootstrap = topology.instance_env(instance)["KAFKA_BOOTSTRAP_SERVERS"].split(",")
            assert len(bootstrap) == KAFKA_NODES, instance.id
        # Every Postgres member's proxy: libpq picks the one that takes writes.
        database = urlsplit(topology.instance_env(instance)["DATABASE_URL"])
        assert len(database.netloc.split(",")) == POSTGRES_MEMBERS, instance.id


def test_local_proxies_forward_to_the_real_ports_and_each_kafka_node_advertises_its_own() -> None:
    topology = Topology.load("local")
    s = topology.settings
    upstreams = {p["name"]: p["upstream"] for p in proxies(topology)}
    listens = {p["name"]: p["listen"] for p in proxies(topology)}
    assert upstreams == {
        **{
            f"postgres-{n}": f"127.0.0.1:{s.port('POSTGRES_PORT') + n - 1}"
            for n in range(1, POSTGRES_MEMBERS + 1)
        },
        **{
            f"redis-{n}": f"127.0.0.1:{s.port('REDIS_PORT') + n - 1}"
            for n in range(1, 2 * REDIS_SHARDS + 1)
        },
        **{
            f"kafka-{n}": f"127.0.0.1:{s.port('KAFKA_PROXIED_PORT') + n - 1}"
            for n in range(1, KAFKA_NODES + 1)
        },
        "psp": f"127.0.0.1:{s['PSP_PORT']}",
    }
    nodes = topology.kafka_nodes()
    for node in nodes:
        properties = _properties(
            render.templates.get_template("kafka/server.properties.j2").render(
                node=node,
                voters="",
                replicas=len(nodes),
                min_insync=KAFKA_MIN_INSYNC,
                data_dir="/tmp/x",
            )
        )
        # The node's SHOP listener is what its proxy forwards to, and it advertises the
        # proxy, so that a client told about this node connects through that proxy.
        shop = _listeners(properties["listeners"])["SHOP"]
        assert upstreams[node.name] == shop == f"127.0.0.1:{node.proxied_port}", node.name
        advertised = _listeners(properties["advertised.listeners"])["SHOP"]
        assert listens[node.name] == advertised == f"127.0.0.1:{node.proxy_port}", node.name


def test_each_docker_kafka_node_advertises_its_proxy_on_the_listener_it_forwards_to() -> None:
    topology = Topology.load("docker")
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    kafka = [p for p in proxies(topology) if p["name"].startswith("kafka")]
    assert [p["name"] for p in kafka] == [n.name for n in topology.kafka_nodes()]
    for proxy in kafka:
        host, _, upstream_port = proxy["upstream"].rpartition(":")
        # Each proxy forwards to its own node, the compose service of that name.
        assert host == proxy["name"]
        env = services[host]["environment"]
        assert _listeners(env["KAFKA_LISTENERS"])["SHOP"] == f":{upstream_port}", host
        listen_port = proxy["listen"].rsplit(":", 1)[1]
        advertised = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])["SHOP"]
        assert advertised == f"toxiproxy:{listen_port}", host
