"""Kafka on confluent-kafka (librdkafka, bundled in its wheel): a producer that only
reports success once every in-sync replica has the record (acks=all, idempotent, so
broker-side retries never duplicate), consumers that commit offsets by hand after their
work is done, and topic creation.

Why librdkafka and not kafka-python: kafka-python 3.0.12 could block for good inside a
consumer's group join after the broker was away (its issue #3121, fixed only on its main
branch), so a Kafka restart left consumers wedged until a watchdog restarted the whole
instance. librdkafka reconnects in its own threads; `poll()` and `consume()` always return
within their timeout, whatever the broker does. Consumers use the KIP-848 group protocol
(`group.protocol=consumer`): the broker assigns partitions incrementally, so a group is
stable within a heartbeat of its members joining instead of after a stop-the-world
rebalance.

librdkafka's calls either return at once (produce) or take an explicit timeout; the few
that wait on the broker run in worker threads so the event loop never does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from kit.errors import DependencyUnavailable
from kit.settings import ServiceSettings

log = logging.getLogger("kit.kafka")

REQUEST_TIMEOUT_MS = 5000
# A record not on every in-sync replica within this is reported failed: the caller gets a
# 503, or the outbox keeps the row and the relay sends it again later. The relay waits for
# it inside a database transaction, so it stays well under Postgres's idle-in-transaction
# timeout (10 s).
DELIVERY_TIMEOUT_MS = 5000


class UndecodableRecord(ValueError):
    pass


def encode_key(key: str | None) -> bytes | None:
    """Record keys are strings (an order id), so all of one order's events share a partition."""
    return None if key is None else str(key).encode()


def encode_value(value: Mapping[str, Any]) -> bytes:
    return json.dumps(dict(value), separators=(",", ":")).encode()


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


def printable(data: bytes | str | None) -> str:
    """Bytes as text for a dead-letter entry, whatever they hold."""
    if isinstance(data, str):
        return data
    return "" if data is None else data.decode("utf-8", errors="replace")


def _log_error(error: KafkaError) -> None:
    # librdkafka keeps reconnecting by itself. A refused connection comes again at every
    # attempt; "all brokers down" says the same once, so only that one is logged.
    if error.code() == KafkaError._TRANSPORT:
        return
    log.warning("kafka client error", extra={"error": str(error), "fatal": error.fatal()})


def _client_config(bootstrap_servers: str, client_id: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap_servers,
        "client.id": client_id,
        "socket.connection.setup.timeout.ms": REQUEST_TIMEOUT_MS,
        # Come back within a second of the broker: the default backoff grows to 10 s.
        "reconnect.backoff.ms": 100,
        "reconnect.backoff.max.ms": 1000,
        "error_cb": _log_error,
        "logger": logging.getLogger("kit.kafka.librdkafka"),
        # librdkafka's own log repeats every failed connection at error level; errors
        # reach _log_error instead, so its log keeps only what is critical.
        "log_level": 2,
    }


def producer_config(bootstrap_servers: str, client_id: str) -> dict[str, Any]:
    return {
        **_client_config(bootstrap_servers, client_id),
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "request.timeout.ms": REQUEST_TIMEOUT_MS,
        "message.timeout.ms": DELIVERY_TIMEOUT_MS,
    }


def consumer_config(bootstrap_servers: str, group_id: str, client_id: str) -> dict[str, Any]:
    return {
        **_client_config(bootstrap_servers, client_id),
        "group.id": group_id,
        # KIP-848: the broker drives assignment; session and heartbeat times are the
        # broker's (group.consumer.* in server.properties: a member that died without
        # leaving is noticed within 6 s).
        "group.protocol": "consumer",
        # Offsets move only after the handler's effect is committed: a crash in between
        # means redelivery, which consumers absorb by recording event ids. The consumer
        # stores each done offset, and librdkafka commits what is stored once a second
        # (and when the consumer closes) instead of one synchronous commit per poll:
        # a commit per event was a third of the broker's requests, and a round trip
        # the polling thread waited for. A crash may bring back up to a second of
        # events, all duplicates the inbox skips.
        "enable.auto.commit": True,
        "enable.auto.offset.store": False,
        "auto.commit.interval.ms": 1000,
        "auto.offset.reset": "earliest",
        # Handling one poll's records may take 2 minutes (a dependency retried with backoff).
        "max.poll.interval.ms": 120_000,
    }


def ensure_topics(
    bootstrap_servers: str, topics: Mapping[str, int], *, replication_factor: int = 1
) -> list[str]:
    """Create missing topics with explicit partition counts; return the ones created."""
    admin = AdminClient(_client_config(bootstrap_servers, "shopstack-topics"))
    timeout = REQUEST_TIMEOUT_MS / 1000
    existing = set(admin.list_topics(timeout=timeout).topics)
    missing = {name: n for name, n in topics.items() if name not in existing}
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(name, n, replication_factor) for name, n in missing.items()],
        request_timeout=timeout,
    )
    for future in futures.values():
        try:
            future.result(timeout)
        except KafkaException as exc:
            # Another process may create a topic between our list and our create.
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return sorted(missing)


def next_records(consumer: Consumer, most: int, timeout_s: float) -> list[Message]:
    """The records ready now (up to `most`), waiting at most `timeout_s` for the first.
    librdkafka's consume(n, timeout) waits for n records or the whole timeout, which
    would hold every record back for the timeout when traffic is light."""
    first = consumer.poll(timeout_s)
    if first is None:
        return []
    found = [first, *consumer.consume(most - 1, 0)] if most > 1 else [first]
    errors = [m for m in found if m.error()]
    for message in errors:
        log.warning("consumer error", extra={"error": str(message.error())})
    return [m for m in found if not m.error()]


def deliver(
    producer: Producer,
    records: list[tuple[str, bytes | None, bytes, int]],
    timeout_s: float = DELIVERY_TIMEOUT_MS / 1000,
) -> None:
    """Send (topic, key, value, partition or -1) records and wait until every one is on
    all in-sync replicas, for tools and tests that have no event loop; a failure raises."""
    failed: list[str] = []

    def delivered(error: KafkaError | None, _message: Any) -> None:
        if error is not None:
            failed.append(str(error))

    for topic, key, value, partition in records:
        producer.produce(topic, key=key, value=value, partition=partition, on_delivery=delivered)
    if producer.flush(timeout_s) > 0 or failed:
        raise KafkaException(f"not delivered: {failed[:3] or 'timed out'}")


def consume(
    consumer: Consumer,
    handle: Callable[[Message], None],
    *,
    should_stop: Callable[[], bool],
    poll_timeout_s: float = 0.5,
) -> None:
    """Poll, hand each record to `handle`, and commit the batch's offsets only after every
    record in it was handled. A handler that raises leaves the offsets where they were."""
    while not should_stop():
        messages = next_records(consumer, 100, poll_timeout_s)
        if not messages:
            continue
        for message in messages:
            handle(message)
        commit_handled(consumer, messages)


def commit_handled(consumer: Consumer, records: list[Message]) -> None:
    """Commit now, past `records` (all handled). Offsets are stored by hand (see
    consumer_config), so a commit without storing them first would commit nothing."""
    for record in records:
        consumer.store_offsets(message=record)
    consumer.commit(asynchronous=False)


class EventProducer:
    """The instance's Kafka producer, as a component: librdkafka connects (and reconnects)
    in the background, and `/health/ready` reports the broker's state."""

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
        self._producer: Producer | None = None
        self._stopping = threading.Event()
        self._poller: threading.Thread | None = None
        self._check_lock = asyncio.Lock()

    async def start(self) -> None:
        self._producer = Producer(producer_config(self.bootstrap_servers, self.client_id))
        self._poller = threading.Thread(
            target=self._serve_callbacks, name="kafka-delivery", daemon=True
        )
        self._poller.start()

    def _serve_callbacks(self) -> None:
        """Delivery reports arrive through poll(); they resolve the publishers' futures."""
        assert self._producer is not None
        while not self._stopping.is_set():
            self._producer.poll(0.1)

    async def publish(self, topic: str, *, key: str, value: Mapping[str, Any]) -> None:
        """Return once the record is on every in-sync replica; a 503 if Kafka is away."""
        await self.publish_many([(topic, key, value)])

    async def publish_many(self, records: list[tuple[str, str, Mapping[str, Any]]]) -> None:
        """Send (topic, key, value) records in order and return once every one is on all
        in-sync replicas. The idempotent producer keeps their order within a partition."""
        if self._producer is None:
            raise DependencyUnavailable("kafka")
        loop = asyncio.get_running_loop()
        deliveries: list[asyncio.Future[None]] = []

        def reporter(future: asyncio.Future[None]) -> Callable[[KafkaError | None, Any], None]:
            def report(error: KafkaError | None, _message: Any) -> None:
                loop.call_soon_threadsafe(_settle, future, error)

            return report

        try:
            for topic, key, value in records:
                future: asyncio.Future[None] = loop.create_future()
                self._producer.produce(
                    topic,
                    value=encode_value(value),
                    key=encode_key(key),
                    on_delivery=reporter(future),
                )
                deliveries.append(future)
        except (BufferError, KafkaException) as exc:
            # The local queue is full (the broker has been away a while), or the topic is
            # unknown: nothing more is sent; the ones already queued settle on their own.
            raise DependencyUnavailable("kafka") from exc
        try:
            await asyncio.wait_for(
                asyncio.gather(*deliveries), DELIVERY_TIMEOUT_MS / 1000 + self.timeout
            )
        except (KafkaException, TimeoutError) as exc:
            raise DependencyUnavailable("kafka") from exc

    async def check(self) -> None:
        if self._producer is None:
            raise RuntimeError("not started")
        producer = self._producer
        # One check at a time: a hung broker must not pile up blocked threads. A metadata
        # request needs a broker that answers; librdkafka's own timeout bounds it.
        async with self._check_lock:
            await asyncio.wait_for(
                asyncio.to_thread(producer.list_topics, timeout=self.timeout), self.timeout + 1
            )

    async def stop(self) -> None:
        self._stopping.set()
        if self._poller is not None:
            await asyncio.to_thread(self._poller.join, 5)
        if self._producer is not None:
            await asyncio.to_thread(self._producer.flush, self.timeout)


def _settle(future: asyncio.Future[None], error: KafkaError | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(KafkaException(error))
