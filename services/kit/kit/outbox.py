"""The transactional outbox. `add_to_outbox` writes an event in the caller's transaction,
next to the state change it describes; `OutboxRelay` publishes unsent rows to Kafka
(acks=all) in commit order and marks them sent. A crash between publishing and marking
publishes a row again, never loses one: consumers deduplicate by event id.

Only one relay per service publishes at a time (a transaction-scoped advisory lock), so
events keep their order; the other instances' relays wait as hot standbys.

Each row announces itself (NOTIFY, delivered when its transaction commits), so the relay
publishes within milliseconds of a commit instead of polling ten times a second; it still
looks every `idle_seconds` in case a notification was lost with its connection.
"""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import Counter, Gauge
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from kit.db import Notifications, Postgres, Repeating
from kit.events import Event
from kit.kafka import EventProducer

log = logging.getLogger("kit.outbox")

# Any fixed number; the same for every instance of a service (each has its own database).
_RELAY_LOCK = 0x0_7B_0_C5
CHANNEL = "outbox"
# The backlog gauges cost a count over the outbox; once a second is plenty for them.
BACKLOG_EVERY_SECONDS = 1.0

OUTBOX_BACKLOG = Gauge("outbox_backlog", "Outbox rows not yet published.", ["service"])
OUTBOX_OLDEST = Gauge(
    "outbox_oldest_unsent_age_seconds",
    "Age of the oldest outbox row not yet published (0 when none).",
    ["service"],
)
OUTBOX_PUBLISHED = Counter(
    "outbox_published_total", "Outbox rows published to Kafka.", ["service", "topic"]
)


async def add_to_outbox(conn: AsyncConnection, *, topic: str, event: Event) -> None:
    """Must run inside the transaction that makes the change the event describes."""
    # One round trip for the row and its announcement; Postgres folds the
    # transaction's identical notifications into one.
    await conn.execute(
        """WITH added AS (
               INSERT INTO outbox (event_id, topic, key, envelope) VALUES (%s, %s, %s, %s)
               RETURNING 1)
           SELECT pg_notify(%s, '') FROM added""",
        (event.event_id, topic, event.key, Jsonb(event.envelope()), CHANNEL),
    )


class OutboxRelay:
    def __init__(
        self,
        db: Postgres,
        producer: EventProducer,
        *,
        service: str,
        batch_size: int = 200,
        idle_seconds: float = 1.0,
        gather_seconds: float = 0.01,
    ) -> None:
        """`gather_seconds`: after a wake-up, how long to let more commits gather, so a
        busy relay publishes batches, not one row per round."""
        self.db = db
        self.producer = producer
        self.service = service
        self.batch_size = batch_size
        self.gather_seconds = gather_seconds
        self._news = Notifications(db, CHANNEL)
        self._relaying = False
        self._backlog_at = -BACKLOG_EVERY_SECONDS
        self._rounds = Repeating(
            db, self._round, idle_seconds=idle_seconds, name="outbox relay", wait=self._wait
        )

    async def start(self) -> None:
        await self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()
        await self._news.close()

    async def _wait(self, idle_seconds: float) -> None:
        # A standby only polls: its wake-ups would all find the lock taken.
        if not self._relaying:
            await asyncio.sleep(idle_seconds)
            return
        await self._news.wait(idle_seconds)
        await asyncio.sleep(self.gather_seconds)

    async def _round(self) -> bool:
        return await self.publish_batch() >= self.batch_size

    async def publish_batch(self) -> int:
        """Publish up to one batch; return how many rows were published."""
        async with self.db.connection() as conn, conn.transaction():
            cursor = await conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (_RELAY_LOCK,))
            row = await cursor.fetchone()
            # Counted by every instance, relaying or standing by, and before publishing,
            # so the gauge tells the truth while Kafka keeps the relay waiting too.
            await self._export_backlog(conn)
            self._relaying = bool(row and row[0])
            if not self._relaying:
                return 0  # another instance is relaying
            cursor = await conn.execute(
                """SELECT seq, topic, key, envelope FROM outbox WHERE sent_at IS NULL
                   ORDER BY seq LIMIT %s""",
                (self.batch_size,),
            )
            rows = await cursor.fetchall()
            if not rows:
                return 0
            # All acknowledged by every in-sync replica before any is marked sent; a
            # failure rolls the marks back, so the batch goes out again next time.
            await self.producer.publish_many([(topic, key, env) for _, topic, key, env in rows])
            for _, topic, _, _ in rows:
                OUTBOX_PUBLISHED.labels(self.service, topic).inc()
            await conn.execute(
                "UPDATE outbox SET sent_at = now() WHERE seq = ANY(%s)", ([r[0] for r in rows],)
            )
            return len(rows)

    async def _export_backlog(self, conn: AsyncConnection) -> None:
        if time.monotonic() - self._backlog_at < BACKLOG_EVERY_SECONDS:
            return
        self._backlog_at = time.monotonic()
        cursor = await conn.execute(
            """SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)
               FROM outbox WHERE sent_at IS NULL"""
        )
        row = await cursor.fetchone()
        count, oldest = row if row else (0, 0)
        OUTBOX_BACKLOG.labels(self.service).set(count)
        OUTBOX_OLDEST.labels(self.service).set(float(oldest))
