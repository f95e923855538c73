"""The stack's shape, derived once from `.env`: which services run, how many instances
each, on which ports, and the environment every instance gets.

Local mode, Docker mode, the gateway upstreams and Prometheus targets are all rendered
from this, so an instance is never listed by hand in two places.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parents[1]
ENV_FILE = ROOT / ".env"

Mode = Literal["local", "docker"]

SERVICES = ("auth", "cart", "orders", "payments")

# Which shared infrastructure each service talks to; readiness checks follow this.
SERVICE_DEPENDENCIES: dict[str, tuple[str, ...]] = {
    "auth": ("postgres", "redis"),
    "cart": ("postgres", "redis"),
    "orders": ("postgres", "kafka"),
    "payments": ("postgres", "kafka"),
}

# Consul runs as a Raft cluster of this many servers, in both modes (local mode: unless
# REPLICAS=1, see Topology.replicas).
CONSUL_SERVERS = 3

# Kafka runs as a cluster of this many nodes, each broker and KRaft controller; topics
# keep a copy on each, and a write is acknowledged once two hold it (local mode: unless
# REPLICAS=1).
KAFKA_NODES = 3
KAFKA_MIN_INSYNC = 2

# Postgres runs as a primary and a streaming replica under Patroni (local mode: one server
# with REPLICAS=1); a commit is acknowledged once the replica holds it too.
POSTGRES_MEMBERS = 2

# Redis runs as a Redis Cluster of this many shards, a primary and a replica each (local
# mode: one node holding every slot with REPLICAS=1). Keys spread over the shards by hash
# slot; a shard's replica takes over when its primary dies.
REDIS_SHARDS = 3

# Topics and their partition counts (key = order_id, so ordering holds per order).
# Each has a dead-letter topic for events its consumers could not handle.
KAFKA_TOPICS = {
    "order-events": 6,
    "payment-events": 6,
    "order-events.dlq": 1,
    "payment-events.dlq": 1,
}


# What the services reach through Toxiproxy (shopctl/toxiproxy.py), so that experiments
# can fault the network between a service and each of these.
PROXIED = ("postgres", "redis", "kafka", "psp")
# Each one's port inside Docker mode's network. Kafka's node n is proxied on 9092 + n - 1,
# forwarding to the node's listener that advertises that proxy (DOCKER_KAFKA_PROXIED_PORT),
# so that every connection a client opens after bootstrapping passes it too.
DOCKER_PORTS = {"postgres": 5432, "redis": 6379, "psp": 8140}
# Patroni's REST API in each Postgres container.
DOCKER_PATRONI_PORT = 8008
DOCKER_KAFKA_PROXIED_PORT = 19092


def read_env_file(path: Path = ENV_FILE) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    return values


@dataclass(frozen=True)
class Settings:
    """`.env` with the process environment laid over it, as docker compose does."""

    values: dict[str, str]

    @classmethod
    def load(cls) -> Settings:
        values = read_env_file()
        values.update({k: v for k, v in os.environ.items() if k in values})
        return cls(values)

    def __getitem__(self, key: str) -> str:
        return self.values[key]

    def port(self, key: str) -> int:
        return int(self.values[key])


@dataclass(frozen=True)
class Instance:
    service: str
    index: int  # 1-based
    host: str
    port: int

    @property
    def id(self) -> str:
        return f"{self.service}-{self.index}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ConsulServer:
    """One of local mode's Consul servers, on loopback ports of its own."""

    index: int  # 1-based
    http_port: int
    rpc_port: int
    serf_lan_port: int

    @property
    def name(self) -> str:
        return f"consul-{self.index}"


@dataclass(frozen=True)
class KafkaNode:
    """One Kafka node: its PLAINTEXT listener (shopctl, the tests, the other nodes), its
    controller listener, the Toxiproxy proxy the services reach it through and the
    listener behind that proxy, and its metrics (the JMX exporter agent)."""

    index: int  # 1-based, also its node.id
    host: str
    port: int
    controller_port: int
    proxy_port: int
    proxied_port: int
    metrics_port: int

    @property
    def name(self) -> str:
        return f"kafka-{self.index}"


@dataclass(frozen=True)
class PostgresMember:
    """One Postgres server and the Patroni that runs it: its own port (shopctl, the
    tests, the exporter and the other member), the Toxiproxy proxy the services reach it
    through, and Patroni's REST API."""

    index: int  # 1-based
    host: str
    port: int
    proxy_port: int
    api_port: int

    @property
    def name(self) -> str:
        return f"postgres-{self.index}"


@dataclass(frozen=True)
class RedisNode:
    """One node of the Redis Cluster: the address it announces to clients (shopctl, the
    tests and the exporter reach it there), and the Toxiproxy proxy the services reach it
    through (their client maps the one to the other)."""

    index: int  # 1-based
    host: str
    port: int
    proxy_port: int
    bus_port: int  # the nodes' own gossip and failover votes

    @property
    def name(self) -> str:
        return f"redis-{self.index}"


# Node n listens on each of these + n - 1 (local mode). The bus has a port of its own:
# Redis's default, port + 10000, would land on a test stack's ports (shifted by 10000).
REDIS_NODE_PORT_VARS = ("REDIS_PORT", "REDIS_PROXY_PORT", "REDIS_BUS_PORT")

# Member n listens on each of these + n - 1 (local mode).
POSTGRES_MEMBER_PORT_VARS = ("POSTGRES_PORT", "POSTGRES_PROXY_PORT", "PATRONI_API_PORT")

# Node n listens on each of these + n - 1 (local mode).
KAFKA_NODE_PORT_VARS = (
    "KAFKA_PORT",
    "KAFKA_CONTROLLER_PORT",
    "KAFKA_PROXY_PORT",
    "KAFKA_PROXIED_PORT",
    "KAFKA_METRICS_PORT",
)

# Server n listens on each of these + n - 1 (local mode).
CONSUL_SERVER_PORT_VARS = (
    "CONSUL_SERVER_HTTP_PORT",
    "CONSUL_SERVER_RPC_PORT",
    "CONSUL_SERVER_SERF_LAN_PORT",
)


def database_url(service: str, addresses: list[tuple[str, int]]) -> str:
    """libpq's multi-host URL over every Postgres member: a connection goes to whichever
    takes writes (the primary), so a failover needs no new configuration anywhere.
    Development credentials: one role and one database per service, named after it."""
    hosts = ",".join(f"{host}:{port}" for host, port in addresses)
    return f"postgresql://{service}:{service}@{hosts}/{service}?target_session_attrs=read-write"


@dataclass(frozen=True)
class Topology:
    mode: Mode
    settings: Settings

    @classmethod
    def load(cls, mode: Mode = "local") -> Topology:
        return cls(mode, Settings.load())

    def instance_count(self, service: str) -> int:
        return int(self.settings[f"{service.upper()}_INSTANCES"])

    def instances(self, service: str | None = None) -> list[Instance]:
        names = SERVICES if service is None else (service,)
        found = []
        for name in names:
            for index in range(1, self.instance_count(name) + 1):
                if self.mode == "local":
                    port = self.settings.port(f"{name.upper()}_PORT") + index - 1
                    found.append(Instance(name, index, "127.0.0.1", port))
                else:
                    port = self.settings.port("SERVICE_HTTP_PORT")
                    found.append(Instance(name, index, f"{name}-{index}", port))
        return found

    def service_address(self, component: str) -> tuple[str, int]:
        """Where services reach postgres, redis or the card processor: through its
        Toxiproxy proxy, on loopback locally and at `toxiproxy` in Docker mode. Kafka has
        a proxy per node (`kafka_proxies`)."""
        if self.mode == "local":
            return "127.0.0.1", self.settings.port(f"{component.upper()}_PROXY_PORT")
        return "toxiproxy", DOCKER_PORTS[component]

    def upstream_address(self, component: str) -> tuple[str, int]:
        """Where the proxy in front of a component forwards to: the component itself."""
        if self.mode == "local":
            return "127.0.0.1", self.settings.port(f"{component.upper()}_PORT")
        return component, DOCKER_PORTS[component]

    def redis_nodes(self) -> list[RedisNode]:
        count = 2 * REDIS_SHARDS if self.replicas > 1 else 1
        if self.mode == "local":
            s = self.settings
            return [
                RedisNode(n, "127.0.0.1", *(s.port(var) + n - 1 for var in REDIS_NODE_PORT_VARS))
                for n in range(1, count + 1)
            ]
        port = DOCKER_PORTS["redis"]
        return [
            RedisNode(n, f"redis-{n}", port, port + n - 1, port + 10000)
            for n in range(1, count + 1)
        ]

    def redis_proxies(self) -> list[tuple[str, str, str]]:
        """(proxy name, address the services are given, the node behind it)."""
        proxy_host = "127.0.0.1" if self.mode == "local" else "toxiproxy"
        return [
            (n.name, f"{proxy_host}:{n.proxy_port}", f"{n.host}:{n.port}")
            for n in self.redis_nodes()
        ]

    def redis_env(self) -> dict[str, str]:
        """The kit's cluster client settings: it starts from the proxies, and maps each
        address a node announces to that node's proxy, so that every connection it opens,
        to a replica promoted later too, passes Toxiproxy."""
        proxies = self.redis_proxies()
        return {
            "REDIS_CLUSTER_NODES": ",".join(address for _, address, _ in proxies),
            "REDIS_ADDRESS_MAP": ",".join(f"{node}={address}" for _, address, node in proxies),
        }

    def postgres_members(self) -> list[PostgresMember]:
        count = POSTGRES_MEMBERS if self.replicas > 1 else 1
        if self.mode == "local":
            s = self.settings
            return [
                PostgresMember(
                    n, "127.0.0.1", *(s.port(var) + n - 1 for var in POSTGRES_MEMBER_PORT_VARS)
                )
                for n in range(1, count + 1)
            ]
        port = DOCKER_PORTS["postgres"]
        return [
            PostgresMember(n, f"postgres-{n}", port, port + n - 1, DOCKER_PATRONI_PORT)
            for n in range(1, count + 1)
        ]

    def postgres_addresses(self) -> list[tuple[str, int]]:
        """Every member's own address, for shopctl and the tests (not through Toxiproxy)."""
        return [(m.host, m.port) for m in self.postgres_members()]

    def postgres_admin_url(self) -> str:
        """The superuser on whichever member is primary (shopctl, the tests)."""
        hosts = ",".join(f"{host}:{port}" for host, port in self.postgres_addresses())
        password = self.settings["POSTGRES_PASSWORD"]
        return f"postgresql://postgres:{password}@{hosts}/postgres?target_session_attrs=read-write"

    def postgres_exporters(self) -> list[tuple[str, str, int]]:
        """(program or container, member, metrics port): an exporter per member.
        Bookworm's exporter (0.11, the version Docker mode pins too) takes several DSNs
        but registers its collectors' metrics once per DSN, then fails every scrape."""
        base = self.settings.port("POSTGRES_EXPORTER_PORT") if self.mode == "local" else 9187
        return [
            (
                f"postgres-exporter-{m.index}",
                m.name,
                base + m.index - 1 if self.mode == "local" else base,
            )
            for m in self.postgres_members()
        ]

    def postgres_service_addresses(self) -> list[tuple[str, int]]:
        """Where the services reach each member: its Toxiproxy proxy."""
        proxy_host = "127.0.0.1" if self.mode == "local" else "toxiproxy"
        return [(proxy_host, m.proxy_port) for m in self.postgres_members()]

    def postgres_proxies(self) -> list[tuple[str, str, str]]:
        """(proxy name, address the services are given, the member behind it)."""
        return [
            (m.name, f"{host}:{port}", f"{m.host}:{m.port}")
            for m, (host, port) in zip(
                self.postgres_members(), self.postgres_service_addresses(), strict=True
            )
        ]

    def kafka_proxies(self) -> list[tuple[str, str, str]]:
        """(proxy name, address the services are given, the node's listener behind it),
        one per node: each node advertises its own proxy."""
        proxy_host = "127.0.0.1" if self.mode == "local" else "toxiproxy"
        return [
            (
                node.name,
                f"{proxy_host}:{node.proxy_port}",
                f"{node.host}:{node.proxied_port}",
            )
            for node in self.kafka_nodes()
        ]

    @property
    def replicas(self) -> int:
        """Copies of each replicated part (Kafka's nodes, Consul's servers): 3, or 1 with
        REPLICAS=1 for a small machine (local mode; Docker mode's file runs 3)."""
        if self.mode == "docker":
            return KAFKA_NODES
        replicas = int(self.settings.values.get("REPLICAS", str(KAFKA_NODES)))
        if replicas not in (1, KAFKA_NODES):
            raise ValueError(f"REPLICAS is 1 or {KAFKA_NODES}, not {replicas}")
        return replicas

    def kafka_nodes(self) -> list[KafkaNode]:
        if self.mode == "local":
            s = self.settings
            return [
                KafkaNode(n, "127.0.0.1", *(s.port(var) + n - 1 for var in KAFKA_NODE_PORT_VARS))
                for n in range(1, self.replicas + 1)
            ]
        return [
            KafkaNode(n, f"kafka-{n}", 9092, 9093, 9092 + n - 1, DOCKER_KAFKA_PROXIED_PORT, 9404)
            for n in range(1, KAFKA_NODES + 1)
        ]

    def kafka_bootstrap(self) -> str:
        """Every node's PLAINTEXT listener, for shopctl and the tests (any one will do)."""
        return ",".join(f"{node.host}:{node.port}" for node in self.kafka_nodes())

    def consul_address(self) -> str:
        """The Consul HTTP address for the gateway and Prometheus. In Docker mode every
        server answers to the network alias `consul`, and Go's dialer tries each address
        the name resolves to, so a dead server is passed over."""
        if self.mode == "local":
            return f"127.0.0.1:{self.settings['CONSUL_HTTP_PORT']}"
        return "consul:8500"

    def consul_servers(self) -> list[ConsulServer]:
        """Local mode's Consul servers (Docker mode's are the consul-N containers)."""
        s = self.settings
        return [
            ConsulServer(n, *(s.port(var) + n - 1 for var in CONSUL_SERVER_PORT_VARS))
            for n in range(1, self.replicas + 1)
        ]

    def consul_agents(self, instance: Instance) -> list[str]:
        """The Consul agents an instance registers with, in order of preference.
        Locally the host's agent alone, as in production: an instance registered with a
        server instead would belong to that server's node, and fail with it. Docker mode
        has no client agents, so each instance of a service starts at a different server:
        a server's loss takes one instance's entry with it (until it registers with the
        next), never every instance of a service."""
        if self.mode == "local":
            return [self.consul_address()]
        servers = [f"consul-{n}:8500" for n in range(1, CONSUL_SERVERS + 1)]
        first = (instance.index - 1) % CONSUL_SERVERS
        return servers[first:] + servers[:first]

    def instance_env(self, instance: Instance) -> dict[str, str]:
        """Every environment variable an instance gets; the same names in both modes."""
        deps = SERVICE_DEPENDENCIES[instance.service]
        env = {
            "SERVICE_NAME": instance.service,
            "INSTANCE_ID": instance.id,
            # Local instances share the host, so they bind loopback only.
            "HTTP_HOST": "127.0.0.1" if self.mode == "local" else "0.0.0.0",
            "HTTP_PORT": str(instance.port),
            "LOG_LEVEL": "INFO",
            "DATABASE_URL": database_url(instance.service, self.postgres_service_addresses()),
            "CONSUL_HTTP_ADDRS": ",".join(self.consul_agents(instance)),
            "SERVICE_ADDRESS": instance.host,
            # Whose X-Forwarded-For to believe (the client address behind the gateway):
            # loopback locally; in Docker only the gateway can reach an instance.
            "FORWARDED_ALLOW_IPS": "127.0.0.1" if self.mode == "local" else "*",
        }
        if "redis" in deps:
            env |= self.redis_env()
        if instance.service == "payments":
            psp_host, psp_port = self.service_address("psp")
            env["PSP_URL"] = f"http://{psp_host}:{psp_port}"
        if instance.service == "auth":
            env["ADMIN_EMAIL"] = self.settings["ADMIN_EMAIL"]
            env["ADMIN_PASSWORD"] = self.settings["ADMIN_PASSWORD"]
        if "kafka" in deps:
            env["KAFKA_BOOTSTRAP_SERVERS"] = ",".join(a for _, a, _ in self.kafka_proxies())
        return env
