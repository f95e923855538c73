"""Healthy instances of other services, from Consul's health API with blocking queries:
each watcher waits on Consul until the passing set changes, so the cache follows kills
and restarts within a round trip. If Consul is unreachable the last known set stays in
use; callers keep working on what they knew. So it does, for a while, when Consul answers
that none is passing where some were: a restarted Consul knows nobody until the instances
register again, a few seconds later."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import Gauge

from kit.consul import AGENT_ERRORS, ConsulAgents

log = logging.getLogger("kit.discovery")

KNOWN_INSTANCES = Gauge(
    "discovery_instances",
    "Passing instances of a service known to this instance.",
    ["service", "target"],
)
BLOCKING_WAIT = "30s"
# How long an empty answer is not believed over a known set (instances register with a
# restarted Consul within a few seconds); a service that really lost every instance is
# refused fast by its dead addresses meanwhile.
EMPTY_GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class Endpoint:
    id: str
    address: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.address}:{self.port}"


class EndpointSource(Protocol):
    def endpoints(self, target: str) -> tuple[Endpoint, ...]: ...


class ServiceDiscovery:
    def __init__(self, agents: ConsulAgents, targets: Iterable[str], *, caller: str) -> None:
        self.agents = agents
        self.targets = tuple(targets)
        self.caller = caller
        self._endpoints: dict[str, tuple[Endpoint, ...]] = {t: () for t in self.targets}
        self._first_answer = {t: asyncio.Event() for t in self.targets}
        self._watchers: list[asyncio.Task[None]] = []

    def endpoints(self, target: str) -> tuple[Endpoint, ...]:
        return self._endpoints[target]

    async def wait_known(self, target: str, within: float) -> None:
        async with asyncio.timeout(within):
            await self._first_answer[target].wait()

    async def start(self) -> None:
        self._watchers = [asyncio.create_task(self._watch(t)) for t in self.targets]

    async def _watch(self, target: str) -> None:
        index: str | None = None
        empty_since: float | None = None
        loop = asyncio.get_running_loop()

        async def passing(agent: Any) -> tuple[str, list[dict[str, Any]]]:
            # Returns when the passing set differs from the one at `index`, or after
            # BLOCKING_WAIT with the same set.
            result: tuple[str, list[dict[str, Any]]] = await agent.health.service(
                target, passing=True, index=index, wait=BLOCKING_WAIT
            )
            return result

        while True:
            try:
                index, entries = await self.agents.call(passing, within=40)
            except Exception as exc:
                # Keep the last known set; start over with a plain query once Consul
                # (possibly another agent, with its own index) answers again. Whatever
                # went wrong, the watcher must not die: callers depend on it.
                log.warning(
                    "consul unreachable; using last known instances",
                    extra={"target": target, "error": repr(exc)},
                    exc_info=not isinstance(exc, AGENT_ERRORS),
                )
                index = None
                await asyncio.sleep(1)
                continue
            endpoints = tuple(
                sorted(
                    (
                        Endpoint(
                            id=e["Service"]["ID"],
                            address=e["Service"]["Address"] or e["Node"]["Address"],
                            port=e["Service"]["Port"],
                        )
                        for e in entries
                    ),
                    key=lambda endpoint: endpoint.id,
                )
            )
            if not endpoints and self._endpoints[target]:
                empty_since = empty_since or loop.time()
                if loop.time() - empty_since < EMPTY_GRACE_SECONDS:
                    # Ask again soon with a plain query rather than block on the empty set.
                    index = None
                    await asyncio.sleep(0.5)
                    continue
            empty_since = None
            if endpoints != self._endpoints[target]:
                log.info(
                    "instances changed",
                    extra={"target": target, "instances": [e.id for e in endpoints]},
                )
            self._endpoints[target] = endpoints
            KNOWN_INSTANCES.labels(self.caller, target).set(len(endpoints))
            self._first_answer[target].set()

    async def stop(self) -> None:
        for watcher in self._watchers:
            watcher.cancel()
        self._watchers = []
