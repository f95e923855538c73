"""Seeds the catalog from the repository's data file once migrations are applied. Every
instance runs it; inserting only missing products makes that harmless."""

from __future__ import annotations

import asyncio
import logging

from cart.service import Catalog
from kit import DependencyUnavailable, Postgres

log = logging.getLogger("cart.seed")


class CatalogSeed:
    def __init__(self, *, db: Postgres, catalog: Catalog) -> None:
        self.db = db
        self.catalog = catalog
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._seed_when_migrated())

    async def _seed_when_migrated(self) -> None:
        await self.db.migrated.wait()
        while True:
            try:
                added = await self.catalog.seed()
                log.info("catalog seeded", extra={"new_products": added})
                return
            except DependencyUnavailable:
                await asyncio.sleep(1)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
