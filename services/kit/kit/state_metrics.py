"""Gauges read from the service's own database: what the business looks like now (orders
by status, money captured, stock left), as opposed to counters of what one process did.

Counters restart at zero with their process and only count what that instance saw, so a
dashboard cannot compare "captured" with "confirmed" from them; a reading of the system of
record can. Every instance reads and exports the same figures (there is no leader to
elect for it), so dashboards and alerts take `max` over instances, never `sum`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import Gauge

from kit.db import Postgres, Repeating


@dataclass(frozen=True)
class Reading:
    """One query feeding one gauge. Each row is the gauge's label values in order, then
    the value; label sets seen before but missing now are set to 0, so a status that
    emptied shows 0 instead of its last count."""

    gauge: Gauge
    sql: str


class StateGauges:
    def __init__(
        self, db: Postgres, readings: Sequence[Reading], *, interval_seconds: float = 5.0
    ) -> None:
        self.db = db
        self.readings = list(readings)
        self._seen: dict[int, set[tuple[str, ...]]] = {id(r): set() for r in self.readings}
        self._rounds = Repeating(db, self._round, idle_seconds=interval_seconds, name="state")

    async def start(self) -> None:
        await self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()

    async def _round(self) -> bool:
        await self.read_once()
        return False

    async def read_once(self) -> None:
        async with self.db.connection() as conn:
            for reading in self.readings:
                cursor = await conn.execute(reading.sql)
                rows = await cursor.fetchall()
                self._set(reading, [(tuple(str(v) for v in row[:-1]), row[-1]) for row in rows])

    def _set(self, reading: Reading, rows: list[tuple[tuple[str, ...], Any]]) -> None:
        seen = self._seen[id(reading)]
        current: set[tuple[str, ...]] = set()
        for labels, value in rows:
            gauge = reading.gauge.labels(*labels) if labels else reading.gauge
            gauge.set(float(value or 0))
            current.add(labels)
        for gone in seen - current:
            (reading.gauge.labels(*gone) if gone else reading.gauge).set(0)
        seen |= current
