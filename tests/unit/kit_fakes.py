"""Fakes behind the kit's small `Component` interface, for testing health and lifecycle
without servers."""

from __future__ import annotations

import asyncio


class FakeComponent:
    def __init__(
        self, name: str, *, healthy: bool = True, hangs: bool = False, critical: bool = True
    ) -> None:
        self.name = name
        self.critical = critical
        self.healthy = healthy
        self.hangs = hangs
        self.events: list[str] = []

    async def start(self) -> None:
        self.events.append("start")

    async def check(self) -> None:
        if self.hangs:
            await asyncio.sleep(3600)
        if not self.healthy:
            raise ConnectionError(f"{self.name} refused the connection")

    async def stop(self) -> None:
        self.events.append("stop")
