"""The replicated parts of the local stack as clusters with a leader: who leads, who
follows, and whether a write goes through. `make status` shows the roles; the failover
experiments (shopctl/chaos/failover.py) kill the leader and time the first write after."""

from __future__ import annotations

import time
from typing import Protocol

import httpx

from shopctl.topology import Topology


class Cluster(Protocol):
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


def roles(topology: Topology) -> dict[str, str]:
    """Each member's role by process name, e.g. {"consul-2": "leader", ...}; a member
    that neither leads nor follows is "-" (down, or not yet joined)."""
    found: dict[str, str] = {}
    for part in (Consul(topology),):
        leader, following = part.leader(), set(part.followers())
        for member in part.members():
            found[member] = (
                "leader" if member == leader else ("follower" if member in following else "-")
            )
    return found
