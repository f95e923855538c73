"""The replicated parts of the local stack as clusters with a leader (Consul, Kafka,
Postgres, and each Redis Cluster shard): who leads, who follows, and whether a write goes
through. `make status` shows the roles; the failover experiments
(shopctl/chaos/failover.py) kill the leader and time the first write after."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Protocol

import httpx

from shopctl import redis_cluster
from shopctl.topology import Topology


class Cluster(Protocol):
    def prepare(self) -> None: ...
    def members(self) -> list[str]: ...
    def leader(self) -> str | None: ...
    def write(self) -> bool: ...
    def followers(self) -> list[str]: ...


class Consul:
    """Three servers behind the local agent. A write is a KV put through the agent: it
    succeeds only once a leader has committed it to a quorum of the servers."""

    def __init__(self, topology: Topology) -> None:
        self.servers = topology.consul_servers()
        self.agent = f"http://127.0.0.1:{topology.settings['CONSUL_HTTP_PORT']}"
        self.by_rpc = {f"127.0.0.1:{c.rpc_port}": c.name for c in self.servers}

    def prepare(self) -> None:
        return None

    def members(self) -> list[str]:
        return [c.name for c in self.servers]

    def leader(self) -> str | None:
        try:
            address = httpx.get(f"{self.agent}/v1/status/leader", timeout=1).json()
        except (httpx.HTTPError, ValueError):
            return None
        return self.by_rpc.get(address)

    def write(self) -> bool:
        try:
            answer = httpx.put(
                f"{self.agent}/v1/kv/shopstack/failover-probe", content=str(time.time()), timeout=1
            )
        except httpx.HTTPError:
            return False
        return answer.status_code == 200 and answer.json() is True

    def followers(self) -> list[str]:
        """The servers that answer, name a leader other than themselves, and are voters:
        a server that is down stays in the Raft configuration, so that alone says
        nothing."""
        following = []
        for server in self.servers:
            base = f"http://127.0.0.1:{server.http_port}/v1"
            try:
                leader = httpx.get(f"{base}/status/leader", timeout=1).json()
                config = httpx.get(f"{base}/operator/raft/configuration", timeout=1).json()
            except (httpx.HTTPError, ValueError):
                continue
            voters = {s["Node"] for s in config["Servers"] if s["Voter"]}
            if leader and self.by_rpc.get(leader) != server.name and server.name in voters:
                following.append(server.name)
        return following


class Kafka:
    """The KRaft quorum of the three nodes. Each node keeps its view of the quorum (the
    leader's id and epoch) in its metadata log's quorum-state file, rewritten at every
    election; the leader is the one named by the newest epoch among the nodes that
    answer. A write is a record with acks=all to every partition of a probe topic (one
    partition led by each node): it succeeds once each partition has a leader and two
    in-sync copies, i.e. once the new controller has moved the dead node's partitions."""

    PROBE_TOPIC = "shopstack.failover-probe"

    def __init__(self, topology: Topology, run: Path) -> None:
        self.nodes = topology.kafka_nodes()
        self.run = run
        self.bootstrap = topology.kafka_bootstrap()
        self._producer: Any = None

    def members(self) -> list[str]:
        return [node.name for node in self.nodes]

    def _views(self) -> dict[str, tuple[int, int]]:
        """(leader id, epoch) as each answering node last wrote it."""
        from shopctl.kafka_admin import cluster_answers

        views = {}
        for node in self.nodes:
            state = self.run / "kafka" / node.name / "data/__cluster_metadata-0/quorum-state"
            try:
                found = json.loads(state.read_text())
            except (OSError, ValueError):
                continue
            if cluster_answers(f"{node.host}:{node.port}", timeout=1):
                views[node.name] = (int(found["leaderId"]), int(found["leaderEpoch"]))
        return views

    def leader(self) -> str | None:
        views = self._views()
        if not views:
            return None
        leader_id, _ = max(views.values(), key=lambda view: view[1])
        names = {node.index: node.name for node in self.nodes}
        leader = names.get(leader_id)
        return leader if leader in views else None

    def followers(self) -> list[str]:
        views = self._views()
        leader = self.leader()
        if leader is None:
            return []
        newest = views[leader]
        return [name for name, view in views.items() if name != leader and view == newest]

    def prepare(self) -> None:
        """The probe topic and a producer, made while every node is up (creating a topic
        is itself a write to the controller), and one write through."""
        from confluent_kafka import Producer

        from kit.kafka import ensure_topics, producer_config

        ensure_topics(
            self.bootstrap, {self.PROBE_TOPIC: len(self.nodes)}, replication_factor=len(self.nodes)
        )
        config = producer_config(self.bootstrap, "shopstack-failover-probe")
        self._producer = Producer({**config, "message.timeout.ms": 1000})
        # A topic just created takes a moment to have leaders the producer knows of.
        deadline = time.monotonic() + 30
        while not self.write():
            if time.monotonic() > deadline:
                raise RuntimeError("Kafka takes no write before the fault")

    def write(self) -> bool:
        from confluent_kafka import KafkaException

        if self._producer is None:
            self.prepare()
        failed: list[Any] = []

        def delivered(error: Any, _message: Any) -> None:
            if error is not None:
                failed.append(error)

        try:
            for partition in range(len(self.nodes)):
                self._producer.produce(
                    self.PROBE_TOPIC, b"probe", partition=partition, on_delivery=delivered
                )
        except (KafkaException, BufferError):
            return False
        left = self._producer.flush(1.5)
        return left == 0 and not failed


class Postgres:
    """A primary and its synchronous replica, each run by a Patroni that reports the
    cluster as it sees it in Consul (GET /cluster on its REST API). A write is an insert
    on whichever member takes writes, acknowledged once the replica holds it too while
    one follows."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.servers = topology.postgres_members()

    def members(self) -> list[str]:
        return [m.name for m in self.servers]

    def _view(self) -> list[dict[str, Any]]:
        for member in self.servers:
            try:
                found = httpx.get(f"http://{member.host}:{member.api_port}/cluster", timeout=1)
                return list(found.json()["members"])
            except (httpx.HTTPError, ValueError, KeyError):
                continue
        return []

    def leader(self) -> str | None:
        leaders = [m["name"] for m in self._view() if m["role"] == "leader"]
        return leaders[0] if leaders else None

    def followers(self) -> list[str]:
        """Replicas streaming from the leader (a synchronous one or not)."""
        return [
            m["name"]
            for m in self._view()
            if m["role"] in ("sync_standby", "replica") and m["state"] == "streaming"
        ]

    def prepare(self) -> None:
        deadline = time.monotonic() + 30
        while not self._execute("CREATE TABLE IF NOT EXISTS failover_probe (at timestamptz)"):
            if time.monotonic() > deadline:
                raise RuntimeError("Postgres takes no write before the fault")
            time.sleep(0.2)

    def write(self) -> bool:
        return self._execute("INSERT INTO failover_probe VALUES (now())")

    def _execute(self, sql: str) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.topology.postgres_admin_url(), connect_timeout=1) as conn:
                conn.execute("SET statement_timeout = 1500")
                conn.execute(sql)
            return True
        except psycopg.Error:
            return False


class RedisShard:
    """The Redis Cluster shard that holds the failover probe's key: its primary leads,
    its replica follows (a node the cluster flags as failing does not). A write is a SET
    of that key on whichever node serves its slot now; the other shards are not asked."""

    PROBE_KEY = "shopstack:failover-probe"

    def __init__(self, topology: Topology) -> None:
        from redis.crc import key_slot

        self.nodes = topology.redis_nodes()
        self.slot = key_slot(self.PROBE_KEY.encode())

    def leader(self) -> str | None:
        primary = redis_cluster.primary_of_slot(self.nodes, self.slot)
        return primary.name if primary else None

    def members(self) -> list[str]:
        """The leader, its replicas, and a primary left with no slots (the old leader,
        down or not yet rejoined)."""
        found, leader = redis_cluster.view(self.nodes), self.leader()
        return [
            name
            for name, node in found.items()
            if name == leader or node.primary_of == leader or (node.primary and not node.slots)
        ]

    def followers(self) -> list[str]:
        leader = self.leader()
        return [
            name
            for name, node in redis_cluster.view(self.nodes).items()
            if node.primary_of == leader and not node.primary and not node.failing
        ]

    def prepare(self) -> None:
        if not self.write():
            raise RuntimeError("the Redis shard takes no write before the fault")

    def write(self) -> bool:
        import redis

        primary = redis_cluster.primary_of_slot(self.nodes, self.slot)
        if primary is None:
            return False
        try:
            with redis_cluster.client(primary, timeout=0.5) as node:
                return bool(node.set(self.PROBE_KEY, str(time.time())))
        except redis.RedisError:  # refused, or MOVED: not the primary yet
            return False


def redis_roles(topology: Topology) -> dict[str, str]:
    """Each node's part in the cluster with its key count, e.g. "primary, 5461 slots,
    120 keys" or "replica of redis-1, 120 keys"."""
    found = {}
    for name, node in redis_cluster.view(topology.redis_nodes()).items():
        keys = "?" if node.keys is None else f"{node.keys:,}"
        if node.failing:
            found[name] = "failing"
        elif node.primary:
            found[name] = f"primary, {node.slots} slots, {keys} keys"
        else:
            found[name] = f"replica of {node.primary_of}, {keys} keys"
    return found


def roles(topology: Topology, run: Path) -> dict[str, str]:
    """Each member's role by process name, e.g. {"consul-2": "leader", ...}; a member
    that neither leads nor follows is "-" (down, or not yet joined)."""
    found: dict[str, str] = {}
    parts: list[Cluster] = [Consul(topology), Kafka(topology, run), Postgres(topology)]
    for part in parts:
        leader, following = part.leader(), set(part.followers())
        for member in part.members():
            found[member] = (
                "leader" if member == leader else ("follower" if member in following else "-")
            )
    return found | redis_roles(topology)
