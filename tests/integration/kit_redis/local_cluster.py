"""A real Redis Cluster for tests: six `redis-server` processes on 127.0.0.1 (three
primaries, one replica each), created with `redis-cli --cluster create`, each in its own
folder with its append-only file, stopped by PID; and one plain Redis to compare.

Each node announces a host name that does not resolve (`node-<port>.invalid`) as the
address clients should use, the way nodes behind proxies announce addresses the
services cannot reach directly; the cluster bus and replication still use 127.0.0.1.
A client therefore reaches a node only through REDIS_ADDRESS_MAP, which maps each
announced name to the node's real address: a connection that bypassed the map would
fail to resolve."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import redis

from kit.redis_cluster import ClusterClient

PORT_RANGE = range(27000, 28000)
NODE_TIMEOUT_MS = 2000


@dataclass
class Node:
    port: int
    bus_port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def announced(self) -> str:
        return f"node-{self.port}.invalid"

    def admin(self, timeout: float = 1.0) -> redis.Redis:
        return redis.Redis(
            port=self.port, socket_timeout=timeout, socket_connect_timeout=timeout,
            decode_responses=True,
        )  # fmt: skip


@dataclass(frozen=True)
class Role:
    port: int
    primary: bool
    primary_port: int | None  # a replica's primary
    failed: bool


class LocalRedisCluster:
    def __init__(self, root: Path, *, size: int = 6) -> None:
        ports = free_ports(2 * size)
        self.nodes = [
            Node(port, bus, root / str(port))
            for port, bus in zip(ports[:size], ports[size:], strict=True)
        ]

    # -- what clients are configured with ------------------------------------------

    @property
    def startup_nodes(self) -> str:
        return ",".join(f"127.0.0.1:{node.port}" for node in self.nodes[:2])

    @property
    def address_map(self) -> str:
        return ",".join(f"{n.announced}:{n.port}=127.0.0.1:{n.port}" for n in self.nodes)

    # -- processes -----------------------------------------------------------------

    def start(self) -> None:
        self.start_nodes()
        self.form()

    def start_nodes(self) -> None:
        """Every node up, each on its own: no cluster yet."""
        for node in self.nodes:
            node.folder.mkdir(parents=True, exist_ok=True)
            self.start_node(node.port)

    def form(self) -> None:
        subprocess.run(
            ["/usr/bin/redis-cli", "--cluster", "create",
             *(f"127.0.0.1:{node.port}" for node in self.nodes),
             "--cluster-replicas", "1", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        self.wait_until_healthy()

    def start_node(self, port: int) -> None:
        """Starts (or restarts, from its folder's nodes.conf and append-only file) a node."""
        node = self.node(port)
        node.process = subprocess.Popen(
            ["/usr/bin/redis-server",
             "--bind", "127.0.0.1", "--port", str(node.port), "--dir", str(node.folder),
             "--logfile", "redis.log", "--save", "", "--appendonly", "yes",
             "--cluster-enabled", "yes", "--cluster-port", str(node.bus_port),
             "--cluster-config-file", "nodes.conf",
             "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
             "--cluster-require-full-coverage", "no",
             "--cluster-announce-hostname", node.announced,
             "--cluster-preferred-endpoint-type", "hostname"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        until(lambda: _answers(node), within=10, what=f"redis-server on {port} answering")

    def kill(self, port: int) -> None:
        """SIGKILL: no shutdown, no last write to the append-only file."""
        process = self.node(port).process
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()
        for node in self.nodes:
            if node.process is None:
                continue
            try:
                node.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(timeout=10)

    # -- state ---------------------------------------------------------------------

    def node(self, port: int) -> Node:
        return next(node for node in self.nodes if node.port == port)

    def live(self) -> list[Node]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    def roles(self, *, seen_from: int | None = None) -> dict[int, Role]:
        """Each node's role in CLUSTER NODES, as one live node sees it."""
        asking = self.node(seen_from) if seen_from else self.live()[0]
        with asking.admin() as admin:
            text = admin.execute_command("CLUSTER", "NODES")
        ids: dict[str, int] = {}
        rows = []
        for line in str(text).splitlines():
            node_id, address, flags, primary_id = line.split()[:4]
            port = int(address.split("@")[0].rsplit(":", 1)[1])
            ids[node_id] = port
            rows.append((port, flags.split(","), primary_id))
        return {
            port: Role(
                port=port,
                primary="master" in flags,
                primary_port=ids.get(primary_id),
                failed="fail" in flags or "fail?" in flags,
            )
            for port, flags, primary_id in rows
        }

    def primaries(self) -> list[int]:
        return sorted(r.port for r in self.roles().values() if r.primary and not r.failed)

    def replica_of(self, primary: int) -> int:
        return next(r.port for r in self.roles().values() if r.primary_port == primary)

    def healthy(self) -> bool:
        """Six live nodes that all see three primaries, each with a replica in sync."""
        if len(self.live()) != len(self.nodes):
            return False
        for node in self.nodes:
            roles = self.roles(seen_from=node.port)
            if any(r.failed for r in roles.values()) or len(roles) != len(self.nodes):
                return False
            primaries = {r.port for r in roles.values() if r.primary}
            replicas = [r for r in roles.values() if not r.primary]
            if len(primaries) != 3 or sorted(r.primary_port or 0 for r in replicas) != sorted(
                primaries
            ):
                return False
            with node.admin() as admin:
                if admin.execute_command("CLUSTER INFO").get("cluster_state") != "ok":
                    return False
                info = admin.info("replication")
            if info["role"] == "slave" and (
                info["master_link_status"] != "up" or info["master_sync_in_progress"]
            ):
                return False
        return True

    def wait_until_healthy(self, within: float = 60) -> None:
        until(self.healthy, within=within, what="the cluster healthy")

    def seen_as_primary(self, port: int) -> bool:
        """Every live node sees `port` as a primary (a promotion is known everywhere)."""
        try:
            views = [self.roles(seen_from=node.port) for node in self.live()]
        except redis.RedisError:
            return False
        return all(port in view and view[port].primary for view in views)

    def cluster_slots_calls(self, *, leaving_out: int | None = None) -> int:
        """CLUSTER SLOTS commands answered by the live nodes: a client fetching its slot
        map again shows here."""
        total = 0
        for node in self.live():
            if node.port == leaving_out:
                continue
            with node.admin() as admin:
                stats = admin.info("commandstats")
            total += int(stats.get("cmdstat_cluster|slots", {}).get("calls", 0))
        return total


class LocalRedis:
    """One plain redis-server (REDIS_URL's mode), in its own folder."""

    def __init__(self, folder: Path) -> None:
        [port] = free_ports(1)
        self.node = Node(port, 0, folder)
        self.url = f"redis://127.0.0.1:{port}/0"

    def start(self) -> None:
        self.node.folder.mkdir(parents=True, exist_ok=True)
        self.node.process = subprocess.Popen(
            ["/usr/bin/redis-server",
             "--bind", "127.0.0.1", "--port", str(self.node.port),
             "--dir", str(self.node.folder), "--logfile", "redis.log", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        until(lambda: _answers(self.node), within=10, what="redis-server answering")

    def stop(self) -> None:
        if self.node.process is not None:
            self.node.process.terminate()
            self.node.process.wait(timeout=10)


def free_ports(wanted: int) -> list[int]:
    found = []
    for port in PORT_RANGE:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        found.append(port)
        if len(found) == wanted:
            return found
    raise RuntimeError(f"fewer than {wanted} free ports in {PORT_RANGE}")


def on_each_primary(
    client: ClusterClient, cluster: LocalRedisCluster, key_of: Callable[[str], str]
) -> dict[int, str]:
    """A name per primary (by port) whose key, `key_of(name)`, lives on its shard."""
    primaries = set(cluster.primaries())
    prefix = uuid.uuid4().hex[:8]
    found: dict[int, str] = {}
    for i in count():
        name = f"{prefix}-{i}"
        found.setdefault(int(client.get_node_from_key(key_of(name)).port), name)
        if set(found) == primaries:
            break
    return found


async def eventually(condition: Callable[[], bool], *, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {within:g}s for {what}")
        await asyncio.sleep(0.02)


def until(condition: Callable[[], bool], *, within: float, what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError):
            if condition():
                return
        time.sleep(every)
    raise AssertionError(f"waited {within:g}s for {what}")


def _answers(node: Node) -> bool:
    with node.admin() as admin:
        return bool(admin.ping())
