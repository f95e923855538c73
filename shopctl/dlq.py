"""`make replay-dlq TOPIC=order-events.dlq`: send dead-lettered events back to the topic
they came from, once whatever made them fail is fixed. They keep their event ids, so an
event that did take effect after all is skipped by the consumer's inbox. Records that
were never valid events (not JSON, no envelope) are reported and left out."""

from __future__ import annotations

from kafka import KafkaConsumer, KafkaProducer

from kit.kafka import UndecodableRecord, consumer_config, decode_record, producer_config

REPLAY_GROUP = "shopstack-dlq-replay"


def replay(bootstrap_servers: str, dlq_topic: str) -> tuple[int, int]:
    """Replay everything not yet replayed from `dlq_topic`; return (replayed, skipped)."""
    consumer = KafkaConsumer(
        dlq_topic, **consumer_config(bootstrap_servers, REPLAY_GROUP, "dlq-replay")
    )
    producer = KafkaProducer(**producer_config(bootstrap_servers, "dlq-replay"))
    replayed = skipped = 0
    try:
        while batches := consumer.poll(timeout_ms=3000):
            for records in batches.values():
                for record in records:
                    try:
                        key, entry = decode_record(record.key, record.value)
                    except UndecodableRecord:
                        entry = None
                    original = entry.get("record") if isinstance(entry, dict) else None
                    if not isinstance(original, dict) or "topic" not in entry:
                        print(f"skipped {dlq_topic}@{record.offset}: not a valid event")
                        skipped += 1
                        continue
                    producer.send(entry["topic"], key=key, value=original).get(10)
                    replayed += 1
            # Only after the batch is back on its topic: a crash replays it again, and
            # the consumers' inbox absorbs the repeat.
            consumer.commit()
    finally:
        producer.close()
        consumer.close(autocommit=False)
    return replayed, skipped
