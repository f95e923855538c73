"""Consuming events exactly-once in effect over at-least-once delivery.

For each record: decode and parse the envelope, then in ONE database transaction record
the event id in the inbox (`processed_events`) and apply the handler's effect; a
redelivered event finds its id there and is skipped. Offsets are stored only for records
whose transactions committed, and librdkafka commits the stored ones once a second.

Failures are of two kinds. A transient one (a dependency briefly away, a lock wait that
timed out, an outside system that gave no final answer: `is_transient`) is retried with
backoff and never dead-lettered; if it lasts beyond `transient_patience_seconds`, the
partition is sought back to the record and polled again, so the member keeps polling and
stays in its group. Any other failure is a defect for a person to look at: after
`max_attempts` tries the record goes to the dead-letter topic (`<topic>.dlq`) with the
reason, and consumption moves on; a record that cannot be decoded or parsed goes there at
once.

librdkafka's consumer polls in a worker thread (its calls block up to their timeout) and
hands each record to the event loop, waiting for the result before the next, so one
partition's events are handled in order. librdkafka reconnects by itself after a broker
outage and `consume()` always returns within its timeout; a watchdog that restarts the
instance (SIGTERM: deregister, drain, exit; the supervisor starts it again) stays as the
last resort should a poll ever stop coming back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

import psycopg
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from prometheus_client import Counter, Gauge
from psycopg import AsyncConnection
from psycopg_pool import PoolTimeout

from kit.db import Postgres
from kit.errors import DependencyUnavailable, TransientFailure
from kit.events import Event, MalformedEvent
from kit.kafka import (
    EventProducer,
    UndecodableRecord,
    consumer_config,
    decode_record,
    next_records,
    printable,
)

log = logging.getLogger("kit.consumer")

MAX_RECORDS = 100
POLL_TIMEOUT_S = 0.5

Handler = Callable[[AsyncConnection, Event], Awaitable[None]]
T = TypeVar("T")

TRANSIENT = (TransientFailure, DependencyUnavailable, psycopg.OperationalError, PoolTimeout)


def is_transient(exc: BaseException) -> bool:
    """Worth trying again unchanged: a dependency away, a lock or statement timeout, a
    connection ended by the server, an outside system without a final answer."""
    return isinstance(exc, TRANSIENT)


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
        transient_patience_seconds: float = 20.0,
        wedged_after_seconds: float = 30.0,
        concurrency: int = 8,
    ) -> None:
        self.db = db
        self.producer = producer
        self.bootstrap_servers = bootstrap_servers
        self.topics = list(topics)
        self.group = group
        self.handle = handle
        self.service = service
        self.max_attempts = max_attempts
        self.transient_patience_seconds = transient_patience_seconds
        self.wedged_after_seconds = wedged_after_seconds
        self.concurrency = concurrency
        self._last_progress = time.monotonic()
        self._stopping = threading.Event()
        # Every outcome exported from the start at 0, so that increase() sees the first
        # dead letter instead of a series that begins at 1.
        for outcome in ("handled", "duplicate", "dead_lettered"):
            EVENTS.labels(service, group, outcome)
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
            try:
                self._consume_until_stopped()
            except Exception:
                log.exception("consumer failed; reconnecting", extra={"group": self.group})
                time.sleep(1)

    def _consume_until_stopped(self) -> None:
        config = consumer_config(self.bootstrap_servers, self.group, f"{self.service}-{self.group}")
        consumer = Consumer(config)
        consumer.subscribe(self.topics, on_revoke=self._forget_lag)
        try:
            while not self._stopping.is_set():
                self._last_progress = time.monotonic()
                records = next_records(consumer, MAX_RECORDS, POLL_TIMEOUT_S)
                if records:
                    done, held = self._run(self._process_batch(records))
                    for (topic, n), offset in held.items():
                        with contextlib.suppress(KafkaException):
                            # Refused only for a partition just taken away: its next
                            # owner starts from the last committed offset anyway.
                            consumer.seek(TopicPartition(topic, n, offset))
                    if done:
                        self._store_offsets(consumer, done)
                self._export_lag(consumer)
        finally:
            consumer.close()

    async def _process_batch(
        self, records: list[Message]
    ) -> tuple[dict[tuple[str, int], int], dict[tuple[str, int], int]]:
        """Handles a poll's records, each key's in order and different keys at once (up
        to `concurrency`): events are ordered per key (one order's), and one slow handler
        (an outside call, a lock wait) no longer holds every other order back.

        Returns the offset to commit per partition, and per partition whose records were
        not all done (a transient failure outlasted the patience) the offset to read
        again from: the earliest record not done. Records after it that were done come
        again and the inbox makes them duplicates."""
        by_key: dict[tuple[str, int, bytes | str | None], list[Message]] = {}
        for record in records:
            topic, n = record.topic(), record.partition()
            assert topic is not None and n is not None
            by_key.setdefault((topic, n, record.key()), []).append(record)
        slots = asyncio.Semaphore(self.concurrency)
        undone: dict[tuple[str, int], int] = {}

        async def in_order(queue: list[Message]) -> None:
            async with slots:
                for record in queue:
                    if not await self._process(record):
                        place = (str(record.topic()), int(record.partition() or 0))
                        offset = int(record.offset() or 0)
                        undone[place] = min(offset, undone.get(place, offset))
                        return

        await asyncio.gather(*(in_order(queue) for queue in by_key.values()))
        done: dict[tuple[str, int], int] = {}
        for record in records:
            place = (str(record.topic()), int(record.partition() or 0))
            if place not in undone:
                done[place] = int(record.offset() or 0) + 1
        for place, offset in undone.items():
            done[place] = offset  # everything before it is done
        return done, undone

    def _store_offsets(self, consumer: Consumer, done: dict[tuple[str, int], int]) -> None:
        """Stores the offsets for librdkafka's next commit (within a second)."""
        offsets = [TopicPartition(topic, n, offset) for (topic, n), offset in done.items()]
        try:
            consumer.store_offsets(offsets=offsets)
        except KafkaException as exc:
            # The partition moved to another member: its records come again there, and
            # the inbox (processed_events) makes the second delivery a no-op.
            log.warning("offsets not stored", extra={"group": self.group, "error": str(exc)})

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _export_lag(self, consumer: Consumer) -> None:
        """Records behind the end of each assigned partition, from the high watermark
        librdkafka keeps from its fetches (no request to the broker)."""
        assigned = consumer.assignment()
        if not assigned:
            return
        for partition in consumer.position(assigned):
            _, high = consumer.get_watermark_offsets(partition, cached=True)
            if high >= 0 and partition.offset >= 0:
                LAG.labels(self.service, self.group, partition.topic, partition.partition).set(
                    high - partition.offset
                )

    def _forget_lag(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """A partition that moved to another member is that member's to report."""
        for partition in partitions:
            labels = (self.service, self.group, partition.topic, str(partition.partition))
            with contextlib.suppress(KeyError):
                LAG.remove(*labels)

    # -- one record, on the event loop ----------------------------------------------

    async def _process(self, record: Message) -> bool:
        """True once the record is done with (handled, a duplicate, or dead-lettered);
        False when a transient failure outlasted the patience: poll it again later."""
        try:
            _, value = decode_record(record.key(), record.value())
            event = Event.from_envelope(value)
        except (UndecodableRecord, MalformedEvent) as exc:
            await self._dead_letter(record, reason=str(exc))
            return True
        failures = 0
        started = time.monotonic()
        backoff = 0.1
        while not self._stopping.is_set():
            self._last_progress = time.monotonic()  # a slow handler is not a wedged poll
            try:
                outcome = await self._apply(event)
            except MalformedEvent as exc:
                await self._dead_letter(record, reason=str(exc))
                return True
            except Exception as exc:
                context = {"event_id": str(event.event_id), "error": repr(exc)}
                if is_transient(exc):
                    log.warning("event handling waits for a dependency", extra=context)
                    if time.monotonic() - started > self.transient_patience_seconds:
                        return False
                    # Full jitter, so instances retrying the same outage spread out.
                    await asyncio.sleep(random.uniform(0, backoff))
                    backoff = min(backoff * 2, 5.0)
                    continue
                failures += 1
                log.warning("event handling failed", extra={**context, "attempt": failures})
                if failures >= self.max_attempts:
                    await self._dead_letter(record, reason=f"{type(exc).__name__}: {exc}")
                    return True
                await asyncio.sleep(min(0.1 * 2**failures, 2.0))
                continue
            EVENTS.labels(self.service, self.group, outcome).inc()
            return True
        return False

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

    async def _dead_letter(self, record: Message, *, reason: str) -> None:
        key, value, topic = record.key(), record.value(), record.topic()
        try:
            _, original = decode_record(key, value)
        except UndecodableRecord:
            original = printable(value)
        await self.producer.publish(
            f"{topic}.dlq",
            key=printable(key),
            value={
                "reason": reason,
                "group": self.group,
                "topic": topic,
                "partition": record.partition(),
                "offset": record.offset(),
                "record": original,
            },
        )
        EVENTS.labels(self.service, self.group, "dead_lettered").inc()
        log.error("event dead-lettered", extra={"topic": topic, "reason": reason})
