"""Toxiproxy sits between every service and what it depends on, in both modes: each
address a service is given is a proxy, and each proxy forwards to the real part (Kafka's
to the listener that advertises the proxy, so reconnections pass it too)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import yaml

from shopctl import render
from shopctl.topology import PROXIED, ROOT, Topology
from shopctl.toxiproxy import proxies

pytestmark = pytest.mark.unit


def _dependency_addresses(env: dict[str, str]) -> set[str]:
    found = set()
    for key in ("DATABASE_URL", "REDIS_URL", "PSP_URL"):
        if key in env:
            found.add(urlsplit(env[key]).netloc.rsplit("@", 1)[-1])
    if "KAFKA_BOOTSTRAP_SERVERS" in env:
        found |= set(env["KAFKA_BOOTSTRAP_SERVERS"].split(","))
    return found


@pytest.mark.parametrize("mode", ["local", "docker"])
def test_every_dependency_address_a_service_gets_is_a_proxy(mode: str) -> None:
    topology = Topology.load(mode)  # type: ignore[arg-type]
    host = "127.0.0.1" if mode == "local" else "toxiproxy"
    listening = {f"{host}:{p['listen'].rsplit(':', 1)[1]}" for p in proxies(topology)}
    assert [p["name"] for p in proxies(topology)] == list(PROXIED)
    for instance in topology.instances():
        addresses = _dependency_addresses(topology.instance_env(instance))
        assert addresses and addresses <= listening, instance.id


def test_local_proxies_forward_to_the_real_ports_and_kafka_advertises_its_proxy() -> None:
    topology = Topology.load("local")
    s = topology.settings
    upstreams = {p["name"]: p["upstream"] for p in proxies(topology)}
    assert upstreams == {
        "postgres": f"127.0.0.1:{s['POSTGRES_PORT']}",
        "redis": f"127.0.0.1:{s['REDIS_PORT']}",
        "kafka": f"127.0.0.1:{s['KAFKA_PROXIED_PORT']}",
        "psp": f"127.0.0.1:{s['PSP_PORT']}",
    }
    properties = render.templates.get_template("kafka/server.properties.j2").render(
        port=s["KAFKA_PORT"],
        controller_port=s["KAFKA_CONTROLLER_PORT"],
        proxied_port=s["KAFKA_PROXIED_PORT"],
        proxy_port=s["KAFKA_PROXY_PORT"],
        data_dir="/tmp/x",
    )
    assert f"SHOP://127.0.0.1:{s['KAFKA_PROXIED_PORT']}" in properties
    assert f"SHOP://127.0.0.1:{s['KAFKA_PROXY_PORT']}" in properties


def test_docker_kafka_advertises_the_proxy_on_the_listener_it_forwards_to() -> None:
    topology = Topology.load("docker")
    kafka = next(p for p in proxies(topology) if p["name"] == "kafka")
    env = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["kafka"][
        "environment"
    ]
    upstream_port = kafka["upstream"].rsplit(":", 1)[1]
    assert kafka["upstream"].startswith("kafka:")
    assert f"SHOP://:{upstream_port}" in env["KAFKA_LISTENERS"].split(",")
    assert f"SHOP://toxiproxy:{kafka['listen'].rsplit(':', 1)[1]}" in env[
        "KAFKA_ADVERTISED_LISTENERS"
    ].split(",")
