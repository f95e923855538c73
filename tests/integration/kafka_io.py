"""Raw Kafka reads and writes for the tests, outside the kit's producer and consumers:
records the kit would never send (undecodable ones, foreign keys), and whole topics read
back to their end."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, Message, Producer

from kit.kafka import (
    consumer_config,
    decode_record,
    deliver,
    encode_key,
    encode_value,
    next_records,
    producer_config,
)

Value = bytes | Mapping[str, Any]


def produce(
    bootstrap: str, topic: str, records: list[tuple[str | bytes, Value]], partition: int = -1
) -> None:
    """Send records in order, each on every in-sync replica before this returns."""
    deliver(
        Producer(producer_config(bootstrap, "it-raw")),
        [
            (
                topic,
                key if isinstance(key, bytes) else encode_key(key),
                value if isinstance(value, bytes) else encode_value(value),
                partition,
            )
            for key, value in records
        ],
        timeout_s=15,
    )


def partitions(bootstrap: str, topic: str) -> int:
    producer = Producer(producer_config(bootstrap, "it-raw"))
    return len(producer.list_topics(topic, timeout=10).topics[topic].partitions)


def read_to_end(bootstrap: str, topic: str, timeout: float = 30) -> list[Message]:
    """Every record of `topic` from its start to its end as of now, for a new group."""
    consumer = Consumer(consumer_config(bootstrap, f"it-{uuid.uuid4().hex[:8]}", "it-reader"))
    consumer.subscribe([topic])
    seen: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            seen += next_records(consumer, 100, 0.5)
            assigned = consumer.assignment()
            if not assigned:
                continue
            positions = consumer.position(assigned)
            ends = [consumer.get_watermark_offsets(p, timeout=5)[1] for p in positions]
            if all(max(p.offset, 0) >= end for p, end in zip(positions, ends, strict=True)):
                return seen
        raise AssertionError(f"{topic} could not be read to its end")
    finally:
        consumer.close()


def read_topic(bootstrap: str, topic: str, want: int, timeout: float = 30) -> list[Any]:
    """(key, value) of the first `want` records (or all, if fewer come within the time)."""
    consumer = Consumer(consumer_config(bootstrap, f"it-{uuid.uuid4().hex[:8]}", "it"))
    consumer.subscribe([topic])
    seen: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(seen) < want and time.monotonic() < deadline:
            seen += [decode_record(m.key(), m.value()) for m in next_records(consumer, 100, 0.5)]
    finally:
        consumer.close()
    return seen
