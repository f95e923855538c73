"""A component is a dependency an instance holds for its whole life (a database pool, a
Redis client, a Kafka producer): started with the app, checked by `/health/ready`, and
closed after in-flight requests have drained."""

from __future__ import annotations

from typing import Protocol


class Lifecycle(Protocol):
    async def start(self) -> None:
        """Begin working. Must not fail or block when a dependency is down: the
        instance starts anyway (and reports not-ready until it answers)."""

    async def stop(self) -> None: ...


class Component(Lifecycle, Protocol):
    name: str
    # False: the service still serves without it (degraded), so readiness stays 200.
    critical: bool

    async def check(self) -> None:
        """Raise if the dependency does not answer now (bounded by a timeout)."""
