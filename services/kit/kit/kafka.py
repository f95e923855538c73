"""Kafka on kafka-python: a producer that only reports success once every in-sync replica
has the record (acks=all, idempotent, so broker-side retries never duplicate), consumers
that commit offsets by hand after their work is done, and topic creation.

kafka-python is synchronous; blocking calls run in worker threads with explicit timeouts
so the event loop never waits on a broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.serializer import Serializer

from kit.errors import DependencyUnavailable
from kit.settings import ServiceSettings

log = logging.getLogger("kit.kafka")

REQUEST_TIMEOUT_MS = 5000


class KeySerde(Serializer):  # type: ignore[misc]
    """Record keys are strings (an order id), so all of one order's events share a partition."""

    def serialize(self, topic: str, headers: list[tuple[str, bytes]], data: Any) -> bytes | None:
        return None if data is None else str(data).encode()


class JsonSerde(Serializer):  # type: ignore[misc]
    def serialize(self, topic: str, headers: list[tuple[str, bytes]], data: Any) -> bytes:
        return json.dumps(data, separators=(",", ":")).encode()


class UndecodableRecord(ValueError):
    pass


def decode_record(key: bytes | None, value: bytes | None) -> tuple[str, Any]:
    """A record's key as text and its value as JSON. Consumers read raw bytes and decode
    here, per record: a deserializer that raised inside poll() would make every poll of
    the partition fail on the same record for good."""
    try:
        text_key = "" if key is None else key.decode()
    except UnicodeDecodeError as exc:
        raise UndecodableRecord(f"the key is not UTF-8: {exc}") from exc
    if value is None:
        raise UndecodableRecord("the record has no value")
    try:
        return text_key, json.loads(value)
    except ValueError as exc:
        raise UndecodableRecord(f"the value is not JSON: {exc}") from exc


def printable(data: bytes | None) -> str:
    """Bytes as text for a dead-letter entry, whatever they hold."""
    return "" if data is None else data.decode("utf-8", errors="replace")


def producer_config(bootstrap_servers: str, client_id: str) -> dict[str, Any]:
    return {
        "bootstrap_servers": bootstrap_servers.split(","),
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "request_timeout_ms": REQUEST_TIMEOUT_MS,
        "max_block_ms": REQUEST_TIMEOUT_MS,
        "key_serializer": KeySerde(),
        "value_serializer": JsonSerde(),
    }


def consumer_config(bootstrap_servers: str, group_id: str, client_id: str) -> dict[str, Any]:
    return {
        "bootstrap_servers": bootstrap_servers.split(","),
        "group_id": group_id,
        "client_id": client_id,
        # Offsets move only after the handler's effect is committed: a crash in between
        # means redelivery, which consumers absorb by recording event ids.
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "request_timeout_ms": 30000,
        # A member that died without leaving (kill -9) is noticed within 6 s, the broker's
        # minimum, so its partitions move on quickly; handling a batch may take 2 minutes.
        "session_timeout_ms": 6000,
        "heartbeat_interval_ms": 2000,
        "max_poll_interval_ms": 120_000,
    }


def ensure_topics(
    bootstrap_servers: str, topics: Mapping[str, int], *, replication_factor: int = 1
) -> list[str]:
    """Create missing topics with explicit partition counts; return the ones created."""
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers.split(","),
        client_id="shopstack-topics",
        request_timeout_ms=REQUEST_TIMEOUT_MS,
    )
    try:
        existing = set(admin.list_topics())
        missing = {name: n for name, n in topics.items() if name not in existing}
        if missing:
            # Another process may create a topic between our list and our create.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(
                    {
                        name: {"num_partitions": n, "replication_factor": replication_factor}
                        for name, n in missing.items()
                    }
                )
        return sorted(missing)
    finally:
        admin.close()


def consume(
    consumer: KafkaConsumer,
    handle: Callable[[Any], None],
    *,
    should_stop: Callable[[], bool],
    poll_timeout_ms: int = 500,
) -> None:
    """Poll, hand each record to `handle`, and commit the batch's offsets only after every
    record in it was handled. A handler that raises leaves the offsets where they were."""
    while not should_stop():
        batches = consumer.poll(timeout_ms=poll_timeout_ms)
        if not batches:
            continue
        for records in batches.values():
            for record in records:
                handle(record)
        consumer.commit()


class EventProducer:
    """The instance's Kafka producer, as a component: it connects in the background and
    `/health/ready` reports the broker's state."""

    name = "kafka"

    def __init__(self, settings: ServiceSettings, *, critical: bool = True) -> None:
        """`critical=False` for a service whose requests never wait on Kafka (an outbox
        takes their events): the broker being away leaves it ready, and degraded."""
        self.critical = critical
        if not settings.kafka_bootstrap_servers:
            raise ValueError("KAFKA_BOOTSTRAP_SERVERS is required for a service that uses Kafka")
        self.bootstrap_servers = settings.kafka_bootstrap_servers
        self.client_id = settings.instance
        self.timeout = settings.dependency_timeout_seconds
        self._producer: KafkaProducer | None = None
        self._admin: KafkaAdminClient | None = None
        self._connector: asyncio.Task[None] | None = None
        self._check_lock = asyncio.Lock()

    async def start(self) -> None:
        self._connector = asyncio.create_task(self._connect_when_reachable())

    async def _connect_when_reachable(self) -> None:
        delay = 0.5
        while self._producer is None:
            try:
                self._producer = await asyncio.to_thread(self._connect)
            except KafkaError as exc:
                log.warning("kafka not reachable yet", extra={"error": repr(exc)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5)

    def _connect(self) -> KafkaProducer:
        self._admin = KafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers.split(","),
            client_id=f"{self.client_id}-health",
            request_timeout_ms=REQUEST_TIMEOUT_MS,
        )
        return KafkaProducer(**producer_config(self.bootstrap_servers, self.client_id))

    async def publish(self, topic: str, *, key: str, value: Mapping[str, Any]) -> None:
        """Return once the record is on every in-sync replica; a 503 if Kafka is away."""
        if self._producer is None:
            raise DependencyUnavailable("kafka")
        await self.publish_many([(topic, key, value)])

    async def publish_many(self, records: list[tuple[str, str, Mapping[str, Any]]]) -> None:
        """Send (topic, key, value) records in order and return once every one is on all
        in-sync replicas. The idempotent producer keeps their order within a partition."""
        if self._producer is None:
            raise DependencyUnavailable("kafka")
        producer = self._producer

        def send_and_wait() -> None:
            # send() itself can block for up to max_block_ms while it fetches metadata
            # from a broker that is away, so it runs here too, never on the event loop.
            futures = [producer.send(t, key=k, value=dict(v)) for t, k, v in records]
            for future in futures:
                future.get(REQUEST_TIMEOUT_MS / 1000)

        try:
            await asyncio.to_thread(send_and_wait)
        except KafkaError as exc:
            raise DependencyUnavailable("kafka") from exc

    async def check(self) -> None:
        if self._producer is None or self._admin is None:
            raise RuntimeError("not connected yet")
        admin = self._admin
        # One check at a time: a hung broker must not pile up blocked threads.
        async with self._check_lock:
            await asyncio.wait_for(asyncio.to_thread(admin.describe_cluster), self.timeout)

    async def stop(self) -> None:
        if self._connector:
            self._connector.cancel()
        for client in (self._producer, self._admin):
            if client is not None:
                await asyncio.to_thread(client.close)
