"""Consuming events exactly-once in effect over at-least-once delivery.

For each record: parse the envelope, then in ONE database transaction record the event id
in the inbox (`processed_events`) and apply the handler's effect; a redelivered event finds
its id there and is skipped. Offsets are committed to Kafka only after the batch's
transactions committed. A handler that keeps failing gets `max_attempts` tries, then the
record goes to the dead-letter topic (`<topic>.dlq`) with the reason, and consumption moves
on; a malformed envelope goes there at once.

kafka-python 3.0.12 can wedge a consumer for good inside its group join after the broker
was away (poll() stops honouring its timeout). Crash-only remedy: a watchdog sees polls
stop and restarts the instance gracefully (SIGTERM: deregister, drain, exit), and the
supervisor (supervisord, or Docker's restart policy) starts it again with fresh state.

kafka-python's consumer is synchronous, so it polls in a worker thread and hands each
record to the event loop, waiting for the result before the next.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from prometheus_client import Counter, Gauge
from psycopg import AsyncConnection

from kit.db import Postgres
from kit.events import Event, MalformedEvent
from kit.kafka import EventProducer, consumer_config

log = logging.getLogger("kit.consumer")

Handler = Callable[[AsyncConnection, Event], Awaitable[None]]

EVENTS = Counter(
    "consumer_events_total",
    "Events seen by a consumer group, by outcome (handled, duplicate, dead_lettered).",
    ["service", "group", "outcome"],
)
LAG = Gauge(
    "consumer_lag",
    "Records behind the end of each assigned partition.",
    ["service", "group", "topic", "partition"],
)


class EventConsumer:
    def __init__(
        self,
        *,
        db: Postgres,
        producer: EventProducer,
        bootstrap_servers: str,
        topics: Sequence[str],
        group: str,
        handle: Handler,
        service: str,
        max_attempts: int = 5,
        wedged_after_seconds: float = 30.0,
    ) -> None:
        self.db = db
        self.producer = producer
        self.bootstrap_servers = bootstrap_servers
        self.topics = list(topics)
        self.group = group
        self.handle = handle
        self.service = service
        self.max_attempts = max_attempts
        self.wedged_after_seconds = wedged_after_seconds
        self._last_progress = time.monotonic()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watchdog: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(
            target=self._poll_forever, name=f"consumer-{self.group}", daemon=True
        )
        self._thread.start()
        self._watchdog = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(5)
            stalled = time.monotonic() - self._last_progress
            if stalled > self.wedged_after_seconds:
                log.error(
                    "consumer wedged; restarting the instance",
                    extra={"group": self.group, "stalled_seconds": round(stalled)},
                )
                os.kill(os.getpid(), signal.SIGTERM)
                return

    async def stop(self) -> None:
        if self._watchdog:
            self._watchdog.cancel()
        self._stopping.set()
        if self._thread:
            await asyncio.to_thread(self._thread.join, 15)

    # -- the polling thread -------------------------------------------------------

    def _poll_forever(self) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self.db.migrated.wait(), self._loop).result()
        while not self._stopping.is_set():
            # kafka-python 3.0's poll() can block for good in its group join when the
            # consumer was created before the broker was ready; so join only once the
            # broker answers a cluster query.
            self._last_progress = time.monotonic()  # waiting for the broker is not wedged
            if not self._run_quietly(self.producer.check()):
                time.sleep(1)
                continue
            try:
                self._consume_until_stopped()
            except Exception:
                log.exception("consumer failed; reconnecting", extra={"group": self.group})
                time.sleep(1)

    def _consume_until_stopped(self) -> None:
        config = consumer_config(self.bootstrap_servers, self.group, f"{self.service}-{self.group}")
        consumer = KafkaConsumer(*self.topics, **config)
        try:
            while not self._stopping.is_set():
                self._last_progress = time.monotonic()
                batches = consumer.poll(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        self._run(self._process(record))
                if batches:
                    consumer.commit()
                self._export_lag(consumer)
        finally:
            consumer.close(autocommit=False)

    def _run_quietly(self, coroutine: Awaitable[None]) -> bool:
        try:
            self._run(coroutine)
        except Exception:
            return False
        return True

    def _run(self, coroutine: Awaitable[None]) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()  # type: ignore[arg-type]

    def _export_lag(self, consumer: KafkaConsumer) -> None:
        assigned: set[TopicPartition] = consumer.assignment()
        if not assigned:
            return
        ends = consumer.end_offsets(list(assigned))
        for partition in assigned:
            behind = ends[partition] - consumer.position(partition)
            LAG.labels(self.service, self.group, partition.topic, partition.partition).set(behind)

    # -- one record, on the event loop ----------------------------------------------

    async def _process(self, record: Any) -> None:
        try:
            event = Event.from_envelope(record.value)
        except MalformedEvent as exc:
            await self._dead_letter(record, reason=str(exc))
            return
        for attempt in range(1, self.max_attempts + 1):
            self._last_progress = time.monotonic()  # a slow handler is not a wedged poll
            try:
                outcome = await self._apply(event)
                EVENTS.labels(self.service, self.group, outcome).inc()
                return
            except Exception as exc:
                log.warning(
                    "event handling failed",
                    extra={"event_id": str(event.event_id), "attempt": attempt, "error": repr(exc)},
                )
                if attempt == self.max_attempts:
                    await self._dead_letter(record, reason=f"{type(exc).__name__}: {exc}")
                    return
                await asyncio.sleep(min(0.1 * 2**attempt, 2.0))

    async def _apply(self, event: Event) -> str:
        async with self.db.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                """INSERT INTO processed_events (consumer, event_id) VALUES (%s, %s)
                   ON CONFLICT DO NOTHING""",
                (self.group, event.event_id),
            )
            if cursor.rowcount == 0:
                return "duplicate"
            await self.handle(conn, event)
        return "handled"

    async def _dead_letter(self, record: Any, *, reason: str) -> None:
        await self.producer.publish(
            f"{record.topic}.dlq",
            key=record.key or "",
            value={
                "reason": reason,
                "group": self.group,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "record": record.value,
            },
        )
        EVENTS.labels(self.service, self.group, "dead_lettered").inc()
        log.error("event dead-lettered", extra={"topic": record.topic, "reason": reason})
