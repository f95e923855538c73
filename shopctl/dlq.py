"""`make replay-dlq TOPIC=order-events.dlq`: send dead-lettered events back to the topic
they came from, once whatever made them fail is fixed. They keep their event ids, so an
event that did take effect after all is skipped by the consumer's inbox. Records that
were never valid events (not JSON, no envelope) are reported and left out."""

from __future__ import annotations

from confluent_kafka import Consumer, Producer

from kit.kafka import (
    UndecodableRecord,
    commit_handled,
    consumer_config,
    decode_record,
    deliver,
    encode_key,
    encode_value,
    next_records,
    producer_config,
)

REPLAY_GROUP = "shopstack-dlq-replay"


def replay(bootstrap_servers: str, dlq_topic: str) -> tuple[int, int]:
    """Replay everything not yet replayed from `dlq_topic`; return (replayed, skipped)."""
    consumer = Consumer(consumer_config(bootstrap_servers, REPLAY_GROUP, "dlq-replay"))
    consumer.subscribe([dlq_topic])
    producer = Producer(producer_config(bootstrap_servers, "dlq-replay"))
    replayed = skipped = 0
    try:
        # The first poll also waits for the group to hand this member its partitions.
        timeout = 10.0
        while records := next_records(consumer, 100, timeout):
            timeout = 3.0
            back = []
            for record in records:
                try:
                    key, entry = decode_record(record.key(), record.value())
                except UndecodableRecord:
                    entry = None
                original = entry.get("record") if isinstance(entry, dict) else None
                if not isinstance(original, dict) or "topic" not in entry:
                    print(f"skipped {dlq_topic}@{record.offset()}: not a valid event")
                    skipped += 1
                    continue
                back.append((entry["topic"], encode_key(key), encode_value(original), -1))
            # Only once the batch is back on its topic: a crash replays it again, and the
            # consumers' inbox absorbs the repeat.
            deliver(producer, back)
            replayed += len(back)
            commit_handled(consumer, records)
    finally:
        producer.flush(10)
        consumer.close()
    return replayed, skipped
