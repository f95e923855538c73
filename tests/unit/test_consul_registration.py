"""An instance's Consul entry: out of rotation until its first check passes, including
when a previous life of the same instance (killed, so never deregistered) left an entry
that Consul still holds as passing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kit.consul import ServiceRegistration
from kit.settings import ServiceSettings

pytestmark = pytest.mark.unit


class FakeAgent:
    def __init__(self, entries: dict[str, Any]) -> None:
        self.entries = entries
        self.registered: list[dict[str, Any]] = []
        self.service = self

    async def services(self) -> dict[str, Any]:
        return self.entries

    async def register(self, **definition: Any) -> None:
        self.registered.append(definition)
        self.entries[definition["service_id"]] = definition


class FakeAgents:
    current = "fake"

    def __init__(self, agent: FakeAgent) -> None:
        self.agent = agent

    async def call(self, fn: Any, within: float) -> Any:
        return await fn(self)


async def _run_rounds(registration: ServiceRegistration, rounds: int) -> None:
    await registration.start()
    await asyncio.sleep(registration.recheck_seconds * (rounds - 0.5))
    assert registration._keeper is not None
    registration._keeper.cancel()


def _registration(agent: FakeAgent) -> ServiceRegistration:
    settings = ServiceSettings(service_name="orders", instance="orders-1")
    return ServiceRegistration(settings, FakeAgents(agent), recheck_seconds=0.02)  # type: ignore[arg-type]


async def test_a_restarted_instance_registers_over_its_old_entry_and_starts_critical() -> None:
    agent = FakeAgent({"orders-1": {"service_id": "orders-1", "status": "passing"}})
    await _run_rounds(_registration(agent), 4)
    assert len(agent.registered) == 1  # once for this life; then only if the agent forgot it
    assert agent.registered[0]["check"]["Status"] == "critical"
    assert agent.registered[0]["check"]["http"].endswith("/health/ready")


async def test_an_agent_that_forgot_the_instance_gets_it_back() -> None:
    agent = FakeAgent({})
    registration = _registration(agent)
    await registration.start()
    await asyncio.sleep(0.05)
    agent.entries.clear()
    await asyncio.sleep(0.06)
    assert registration._keeper is not None
    registration._keeper.cancel()
    assert len(agent.registered) == 2
