"""The service's own Postgres database: an async psycopg 3 pool, migrations applied at
start-up, and connections that fail fast (503) instead of hanging when Postgres is away."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from kit.errors import DependencyUnavailable
from kit.migrations import KIT_MIGRATIONS, KIT_TABLE, apply_migrations, load_migrations
from kit.settings import ServiceSettings

log = logging.getLogger("kit.db")

RECONNECT_TIMEOUT_SECONDS = 3.0
# See `_Freshness`.
TRUSTED_FOR_SECONDS = 1.0
DOUBT_SECONDS = 10.0


def session_options(settings: ServiceSettings) -> str:
    """libpq `options`: the settings each session starts with."""
    return " ".join(
        f"-c {name}={value}"
        for name, value in (
            ("lock_timeout", settings.db_lock_timeout_ms),
            ("statement_timeout", settings.db_statement_timeout_ms),
            ("idle_in_transaction_session_timeout", settings.db_idle_in_transaction_timeout_ms),
        )
    )


class Postgres:
    name = "postgres"
    critical = True

    def __init__(
        self, settings: ServiceSettings, *, migrations_dir: Path, messaging: bool = False
    ) -> None:
        """`messaging`: also create the kit's outbox and inbox tables."""
        if not settings.database_url:
            raise ValueError("DATABASE_URL is required for a service that uses Postgres")
        self.timeout = settings.dependency_timeout_seconds
        self.migrations = load_migrations(migrations_dir)
        self.kit_migrations = load_migrations(KIT_MIGRATIONS) if messaging else []
        self.migrated = asyncio.Event()
        self.url = settings.database_url
        self.connect_kwargs: dict[str, Any] = {
            "connect_timeout": 2,
            "application_name": settings.instance,
            "options": session_options(settings),
        }
        self._freshness = _Freshness()
        self.pool = AsyncConnectionPool(
            self.url,
            min_size=settings.db_pool_min_size,
            max_size=settings.db_pool_max_size,
            open=False,
            timeout=self.timeout,
            # A connection that died with a Postgres restart is replaced on checkout
            # rather than handed to a request (see `_Freshness` for when it is asked).
            check=self._freshness.check,
            reset=self._freshness.returned,
            # A connection that failed is tried again after 1, 2, 4... s, for at most
            # this long; then the next request that needs one starts afresh at once.
            # psycopg's default (5 min of doubling waits) can leave a pool empty long
            # after Postgres is back.
            reconnect_timeout=RECONNECT_TIMEOUT_SECONDS,
            kwargs=self.connect_kwargs,
        )
        self._probe: AsyncConnection | None = None
        self._probe_lock = asyncio.Lock()
        self._pool_trusted = False
        self._migrator: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.pool.open(wait=False)
        self._migrator = asyncio.create_task(self._migrate_when_reachable())

    async def _migrate_when_reachable(self) -> None:
        delay = 0.5
        while True:
            try:
                async with self.pool.connection(timeout=5) as conn:
                    applied = await apply_migrations(conn, self.kit_migrations, table=KIT_TABLE)
                    applied += await apply_migrations(conn, self.migrations)
                log.info("migrations up to date", extra={"applied": applied})
                self.migrated.set()
                return
            except (psycopg.OperationalError, PoolTimeout) as exc:
                log.warning("postgres not reachable for migrations yet", extra={"error": str(exc)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection for one unit of work; Postgres being away is a 503."""
        if not self.migrated.is_set():
            raise DependencyUnavailable("postgres")
        try:
            async with self.pool.connection(timeout=self.timeout) as conn:
                yield conn
        except (PoolTimeout, psycopg.OperationalError) as exc:
            self._freshness.doubt()
            raise DependencyUnavailable("postgres") from exc

    async def check(self) -> None:
        """Does Postgres answer, and can the pool serve? Postgres is asked over a
        connection of its own in one round trip, so that a slow link or a busy pool does
        not read as Postgres being away: every instance shares the same Postgres, so all
        would leave the gateway together, turning slow answers into no answers at all.
        After Postgres was seen away, the pool must also hand out a connection again
        before the instance is ready: its connections died, and it reconnects on its own
        schedule."""
        if not self.migrated.is_set():
            raise RuntimeError("migrations not applied yet")
        try:
            await self._ask_postgres()
        except BaseException:
            self._pool_trusted = False
            self._freshness.doubt()
            raise
        if not self._pool_trusted:
            async with self.pool.connection(timeout=self.timeout):
                pass
            self._pool_trusted = True

    async def _ask_postgres(self) -> None:
        async with self._probe_lock:
            if self._probe is None or self._probe.closed:
                self._probe = await AsyncConnection.connect(
                    self.url, autocommit=True, **self.connect_kwargs
                )
            conn = self._probe
            try:
                await conn.execute("SELECT 1")
            except BaseException:  # failed or timed out: the next check starts afresh
                self._probe = None
                with contextlib.suppress(Exception):
                    await conn.close()
                raise

    async def stop(self) -> None:
        if self._migrator:
            self._migrator.cancel()
        if self._probe is not None:
            with contextlib.suppress(Exception):
                await self._probe.close()
        await self.pool.close(timeout=5)


class _Freshness:
    """Asking Postgres whether a pooled connection still works costs a round trip per
    unit of work (a dozen per checkout, across the services). A connection that came
    back to the pool within `TRUSTED_FOR_SECONDS` worked a moment ago and is handed out
    as it is; one idle longer is asked first, and so is every connection for a while
    after Postgres was seen failing, so its restart costs no request a dead connection.
    A death inside that second fails one unit of work fast: a 503 for a request, a
    transient retry for an event."""

    def __init__(self) -> None:
        self._returned_at: weakref.WeakKeyDictionary[AsyncConnection, float] = (
            weakref.WeakKeyDictionary()
        )
        self._doubt_until = 0.0

    def doubt(self) -> None:
        self._doubt_until = time.monotonic() + DOUBT_SECONDS

    async def check(self, conn: AsyncConnection) -> None:
        now = time.monotonic()
        returned = self._returned_at.get(conn)
        recent = returned is not None and now - returned < TRUSTED_FOR_SECONDS
        if recent and now >= self._doubt_until:
            return
        await AsyncConnectionPool.check_connection(conn)

    async def returned(self, conn: AsyncConnection) -> None:
        self._returned_at[conn] = time.monotonic()


class AfterMigrations:
    """Start-up work that needs the service's schema (seeding a catalog, creating a
    signing key): it runs once migrations are applied, and again while Postgres is away,
    without holding up the instance's start."""

    def __init__(self, db: Postgres, work: Callable[[], Awaitable[object]], *, name: str) -> None:
        self.db = db
        self.work = work
        self.name = name
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        await self.db.migrated.wait()
        while True:
            try:
                result = await self.work()
                log.info("start-up work done", extra={"work": self.name, "result": result})
                return
            except DependencyUnavailable:
                await asyncio.sleep(1)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()


class Notifications:
    """Waits for a NOTIFY on `channel` (Postgres sends it when the notifying transaction
    commits), on a connection of its own opened at first use. Without that connection
    (Postgres away) it simply waits out the timeout, so its user falls back to polling.
    A notification that arrives between waits is kept by the connection and ends the
    next wait at once: none is missed."""

    def __init__(self, db: Postgres, channel: str) -> None:
        self.db = db
        self.channel = channel
        self._conn: AsyncConnection | None = None

    async def wait(self, seconds: float) -> None:
        conn = await self._listening()
        if conn is None:
            await asyncio.sleep(seconds)
            return
        try:
            async for _ in conn.notifies(timeout=seconds, stop_after=1):
                pass
        except psycopg.Error:
            await self.close()
            await asyncio.sleep(seconds)

    async def _listening(self) -> AsyncConnection | None:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        try:
            self._conn = await AsyncConnection.connect(
                self.db.url, autocommit=True, **self.db.connect_kwargs
            )
            await self._conn.execute(f"LISTEN {self.channel}")
        except psycopg.Error:
            await self.close()
        return self._conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


class Repeating:
    """Background work repeated for the instance's whole life once migrations are applied
    (publishing the outbox, re-driving orders). `work` returns True when there is more to
    do at once; otherwise the next round waits `idle_seconds`. A failed round is logged and
    retried a second later: the loop itself never dies."""

    def __init__(
        self,
        db: Postgres,
        work: Callable[[], Awaitable[bool]],
        *,
        idle_seconds: float,
        name: str,
        wait: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        """`wait(idle_seconds)` is how an idle round waits; one that can be woken early
        (a notification) makes the work prompt without polling."""
        self.db = db
        self.work = work
        self.idle_seconds = idle_seconds
        self.name = name
        self.wait = wait
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        await self.db.migrated.wait()
        while True:
            more = False
            try:
                more = await self.work()
            except DependencyUnavailable as exc:
                log.warning("background work waiting", extra={"work": self.name, "error": str(exc)})
                await asyncio.sleep(1)
            except Exception:
                log.exception("background work failed; retrying", extra={"work": self.name})
                await asyncio.sleep(1)
            if not more:
                await self.wait(self.idle_seconds)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
