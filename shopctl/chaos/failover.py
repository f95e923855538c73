"""Failover experiments' actions: kill a replicated part's leader under load, time until
it takes writes again, and bring the old leader back as a follower. Each returns its
figures, which Chaos Toolkit keeps in the journal and the runner puts in the report.

Consul's and Kafka's leader, and the primary of one Redis shard (the one holding the
probe's key), is killed and held down until `bring_back` starts it. The
Postgres primary's server is killed (SIGKILL to the postmaster and its backends) under its
live Patroni, as a crash: Patroni hands the leader key over at once (primary_start_timeout
0) and restarts the old primary as a replica of the new one by itself.

A part is a cluster with a leader (shopctl/clusters.py). Local mode only: Docker mode
publishes one server's port, so the leader cannot be asked for from outside.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from shopctl.chaos.actions import kill, kill_and_hold, start
from shopctl.chaos.shard_carts import ShardCarts
from shopctl.chaos.target import current
from shopctl.clusters import Cluster, Consul, Kafka, Postgres, RedisShard

POLL_S = 0.05
# Carts are read this long before the kill and after writes resume, as well as between.
CARTS_AROUND_S = 1.0


def cluster(part: str) -> Cluster:
    target = current()
    if target.mode != "local":
        raise RuntimeError("failover experiments run in local mode (make up)")
    if part == "consul":
        return Consul(target.stack.topology)
    if part == "kafka":
        return Kafka(target.stack.topology, target.stack.run)
    if part == "postgres":
        return Postgres(target.stack.topology)
    if part == "redis":
        return RedisShard(target.stack.topology)
    raise ValueError(f"no failover experiment for {part!r}")


@dataclass(frozen=True)
class Failover:
    killed: str
    writes_resumed_s: float | None  # None: not within the deadline
    writes_refused: int
    new_leader: str | None


@dataclass(frozen=True)
class Return:
    name: str
    rejoined_s: float | None  # None: not a following voter within the deadline


def _until(check: Any, within_seconds: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < within_seconds:
        if check():
            return time.monotonic() - started
        time.sleep(POLL_S)
    return None


def kill_leader(part: str, within_seconds: float = 60) -> dict[str, Any]:
    """SIGKILL the part's leader (see above); then write until a write succeeds. For a
    Redis shard, shoppers on every shard read their carts all the while (`carts`: the
    killed shard's reads and the other shards', see shopctl/chaos/shard_carts.py)."""
    found = cluster(part)
    found.prepare()
    leader = found.leader()
    if leader is None:
        raise RuntimeError(f"{part} has no leader to kill")
    if part != "redis":
        return asdict(_kill_and_write(part, found, leader, within_seconds))
    with ShardCarts(current().stack.topology) as carts:
        time.sleep(CARTS_AROUND_S)
        failover = _kill_and_write(part, found, leader, within_seconds)
        time.sleep(CARTS_AROUND_S)
    return asdict(failover) | {"carts": carts.tally(leader)}


def _kill_and_write(part: str, found: Cluster, leader: str, within_seconds: float) -> Failover:
    started = time.monotonic()
    (kill if part == "postgres" else kill_and_hold)([leader])
    refused = 0
    resumed = None
    while time.monotonic() - started < within_seconds:
        if found.write():
            resumed = time.monotonic() - started
            break
        refused += 1
        time.sleep(POLL_S)
    return Failover(leader, resumed, refused, found.leader())


def bring_back(part: str, within_seconds: float = 60) -> dict[str, Any]:
    """Start every member that is down, and wait until each follows a leader again.
    `returned`: those it started or found not yet following, with how long they took;
    `following`: every follower at the end."""
    found = cluster(part)
    states = {p["name"]: p["statename"] for p in current().stack.supervisor.processes()}
    down = [m for m in found.members() if states.get(m) not in ("RUNNING", "STARTING")]
    start(down)
    leader, following = found.leader(), set(found.followers())
    behind = [m for m in found.members() if m in down or (m != leader and m not in following)]

    def rejoined() -> bool:
        leader = found.leader()
        following = set(found.followers())
        return leader is not None and all(m in following for m in behind)

    took = _until(rejoined, within_seconds)
    return {
        "returned": [asdict(Return(name, took)) for name in behind],
        "following": found.followers(),
    }
