"""The Redis Cluster from shopctl's side: forming it once its nodes answer, whether it
serves every slot, and who is primary or replica of which shard with how many keys
(`make status`, the failover experiment). shopctl talks to each node at the address it
announces, never through Toxiproxy."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from shopctl.progress import StackError
from shopctl.topology import RedisNode

SLOTS = 16384
REDIS_CLI = "/usr/bin/redis-cli"


def client(node: RedisNode, timeout: float = 1.0) -> redis.Redis:
    """One node, asked once: redis-py's default retries a refused connection with backoff
    for seconds, and shopctl wants to know now."""
    return redis.Redis(
        host=node.host,
        port=node.port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )


def answers(node: RedisNode) -> bool:
    try:
        with client(node) as asked:
            return bool(asked.ping())
    except redis.RedisError:
        return False


def _info(node: RedisNode) -> dict[str, Any] | None:
    try:
        with client(node) as asked:
            found: dict[str, Any] = asked.cluster("INFO")
            return found
    except redis.RedisError:
        return None


def formed(nodes: list[RedisNode]) -> bool:
    """Every slot has an owner and every node knows the others: created before."""
    info = _info(nodes[0])
    return (
        info is not None
        and int(info["cluster_slots_assigned"]) == SLOTS
        and int(info["cluster_known_nodes"]) == len(nodes)
    )


def serving(nodes: list[RedisNode]) -> bool:
    """Every node that answers says the cluster is ok (each slot served by a primary)."""
    infos = [_info(node) for node in nodes]
    return all(info is not None and info["cluster_state"] == "ok" for info in infos)


def complete(nodes: list[RedisNode]) -> bool:
    """Serving every slot, with each node in place: half the nodes primaries with slots,
    the other half a replica each of one of them (or the one node, alone)."""
    if not serving(nodes):
        return False
    found = view(nodes)
    primaries = {name for name, node in found.items() if node.primary and node.slots}
    replicas = [str(node.primary_of) for node in found.values() if not node.primary]
    if len(found) != len(nodes):
        return False
    return len(primaries) == 1 if len(nodes) == 1 else sorted(replicas) == sorted(primaries)


def create(nodes: list[RedisNode]) -> None:
    """Form the cluster: the first half primaries, each with a replica among the rest
    (redis-cli spreads the slots evenly); a single node takes every slot."""
    if formed(nodes):
        return
    if len(nodes) == 1:
        with client(nodes[0], timeout=5) as asked:
            asked.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, SLOTS - 1)
        return
    addresses = [f"{node.host}:{node.port}" for node in nodes]
    done = subprocess.run(
        [REDIS_CLI, "--cluster", "create", *addresses, "--cluster-replicas", "1", "--cluster-yes"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise StackError(
            f"could not form the Redis Cluster (a node holding keys or a half-made cluster "
            f"is the usual cause; `make clean` starts afresh): {done.stdout[-500:]}"
        )


@dataclass(frozen=True)
class NodeView:
    name: str
    primary: bool
    primary_of: str | None  # the primary it replicates, for a replica
    slots: int
    failing: bool  # flagged fail or pfail by the cluster, or not answering
    keys: int | None  # None: not answering


def view(nodes: list[RedisNode]) -> dict[str, NodeView]:
    """The cluster as the first node that answers sees it, with each node's key count."""
    by_address = {f"{node.host}:{node.port}": node for node in nodes}
    table: dict[str, Any] | None = None
    for answering in nodes:
        try:
            with client(answering) as asked:
                table = asked.cluster("NODES")
            break
        except redis.RedisError:
            continue
    if table is None:
        return {}
    ids = {entry["node_id"]: address for address, entry in table.items()}
    found = {}
    for address, entry in table.items():
        node = by_address.get(address.split("@")[0])
        if node is None:
            continue
        flags = set(entry["flags"].split(","))
        primary_address = ids.get(entry["master_id"])
        primary_node = by_address.get(primary_address.split("@")[0]) if primary_address else None
        found[node.name] = NodeView(
            node.name,
            "master" in flags,
            primary_node.name if primary_node else None,
            sum(_slot_count(span) for span in entry["slots"]),
            bool(flags & {"fail", "fail?"}) or not entry["connected"],
            _keys(node),
        )
    return found


def _slot_count(span: list[str]) -> int:
    return int(span[-1]) - int(span[0]) + 1


def _keys(node: RedisNode) -> int | None:
    try:
        with client(node) as asked:
            return int(asked.dbsize())
    except redis.RedisError:
        return None


def primary_of_slot(nodes: list[RedisNode], slot: int) -> RedisNode | None:
    """The node serving `slot` now, as the first node that answers sees it."""
    for node in nodes:
        try:
            with client(node, timeout=0.5) as asked:
                shards = asked.execute_command("CLUSTER", "SLOTS")
        except redis.RedisError:
            continue
        for start, end, primary, *_ in shards:
            if int(start) <= slot <= int(end):
                host, port = primary[0], int(primary[1])
                return next((n for n in nodes if n.host == host and n.port == port), None)
        return None
    return None
