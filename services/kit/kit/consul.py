"""Consul: each instance registers itself with an HTTP check on `/health/ready`, keeps
itself registered (an agent that restarted has forgotten it), and deregisters on SIGTERM
before it drains.

Several agent addresses may be configured (Docker mode gives the three servers); calls
go to the one that last answered and move on to the next when it does not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import consul
import consul.aio

from kit.settings import ServiceSettings

log = logging.getLogger("kit.consul")

T = TypeVar("T")

# Connection problems with an agent, as py-consul and aiohttp raise them.
AGENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    consul.ConsulException,
    consul.Timeout,
)


class ConsulAgents:
    def __init__(self, addresses: list[str]) -> None:
        if not addresses:
            raise ValueError("at least one Consul address is needed")
        self.addresses = addresses
        self._current = 0
        self._clients: dict[str, consul.aio.Consul] = {}

    def _client(self, address: str) -> consul.aio.Consul:
        # aiohttp sessions must be made inside the running loop, hence lazily.
        if address not in self._clients:
            host, _, port = address.rpartition(":")
            self._clients[address] = consul.aio.Consul(host=host, port=int(port))
        return self._clients[address]

    @property
    def current(self) -> str:
        return self.addresses[self._current]

    async def call(
        self, operation: Callable[[consul.aio.Consul], Awaitable[T]], *, within: float
    ) -> T:
        """Run `operation` on the agent that answered last, else on the next ones."""
        last_error: BaseException | None = None
        for _ in range(len(self.addresses)):
            address = self.current
            try:
                async with asyncio.timeout(within):
                    return await operation(self._client(address))
            except AGENT_ERRORS as exc:
                last_error = exc
                self._current = (self._current + 1) % len(self.addresses)
        assert last_error is not None
        raise last_error

    async def close(self) -> None:
        for client in self._clients.values():
            await client.http._session.close()
        self._clients.clear()


class ServiceRegistration:
    """This instance's entry in Consul, kept there for the instance's whole life."""

    def __init__(
        self, settings: ServiceSettings, agents: ConsulAgents, *, recheck_seconds: float = 2.0
    ) -> None:
        self.agents = agents
        self.service_id = settings.instance
        self.recheck_seconds = recheck_seconds
        address = settings.advertised_address
        self.definition: dict[str, Any] = {
            "name": settings.service_name,
            "service_id": self.service_id,
            "address": address,
            "port": settings.http_port,
            "tags": ["shopstack", f"instance={self.service_id}"],
            "meta": {"version": settings.service_version, "instance": self.service_id},
            "check": {
                **consul.Check.http(
                    f"http://{address}:{settings.http_port}/health/ready",
                    interval=settings.consul_check_interval,
                    timeout=settings.consul_check_timeout,
                    deregister=settings.consul_deregister_critical_after,
                ),
                # Out of rotation until its first check passes. Consul otherwise keeps the
                # status the entry had: after a crash and restart, the previous process's
                # "passing" would send traffic to one that is not ready yet.
                "Status": "critical",
            },
        }
        self._keeper: asyncio.Task[None] | None = None
        self.registrations = 0

    async def start(self) -> None:
        self._keeper = asyncio.create_task(self._keep_registered())

    async def _keep_registered(self) -> None:
        # A process always registers itself once, even over an entry left by an earlier
        # life of this instance (killed without deregistering), so its check starts over.
        registered = False
        while True:
            try:
                services = await self.agents.call(lambda c: c.agent.services(), within=2)
                if not registered or self.service_id not in services:
                    await self.agents.call(
                        lambda c: c.agent.service.register(**self.definition), within=2
                    )
                    self.registrations += 1
                    registered = True
                    log.info(
                        "registered in consul",
                        extra={"agent": self.agents.current, "service_id": self.service_id},
                    )
            except Exception as exc:
                # Never let the keeper die: an instance out of Consul gets no traffic.
                log.warning(
                    "consul not reachable",
                    extra={"error": repr(exc)},
                    exc_info=not isinstance(exc, AGENT_ERRORS),
                )
            await asyncio.sleep(self.recheck_seconds)

    async def deregister(self) -> None:
        """Leave Consul now and stay out: called on SIGTERM, before draining."""
        if self._keeper:
            self._keeper.cancel()
            self._keeper = None
        try:
            await self.agents.call(lambda c: c.agent.service.deregister(self.service_id), within=1)
            log.info("deregistered from consul", extra={"service_id": self.service_id})
        except AGENT_ERRORS as exc:
            # Consul will drop us anyway once the check has been critical long enough.
            log.warning("could not deregister", extra={"error": repr(exc)})

    async def stop(self) -> None:
        await self.deregister()
