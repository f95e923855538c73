import time
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from kit.kafka import consume, consumer_config, decode_record, ensure_topics, producer_config
from shopctl.local import LocalStack

pytestmark = pytest.mark.integration


@pytest.fixture
def bootstrap(stack: LocalStack) -> str:
    return f"127.0.0.1:{stack.settings['KAFKA_PORT']}"


@pytest.fixture
def topic(bootstrap: str) -> str:
    name = f"it-{uuid.uuid4().hex[:8]}"
    assert ensure_topics(bootstrap, {name: 3}) == [name]
    assert ensure_topics(bootstrap, {name: 3}) == []  # idempotent
    return name


def _consume_until(consumer: KafkaConsumer, want: int, handle: object) -> None:
    deadline = time.monotonic() + 30
    seen: list[ConsumerRecord] = []

    def collect(record: ConsumerRecord) -> None:
        handle(record)  # type: ignore[operator]
        seen.append(record)

    consume(
        consumer,
        collect,
        should_stop=lambda: len(seen) >= want or time.monotonic() > deadline,
    )


def test_acks_all_message_reaches_a_consumer_group(bootstrap: str, topic: str) -> None:
    config = producer_config(bootstrap, "it-producer")
    assert config["acks"] == "all" and config["enable_idempotence"] is True
    producer = KafkaProducer(**config)
    order_id = str(uuid.uuid4())
    metadata = producer.send(topic, key=order_id, value={"type": "order.created"}).get(10)
    producer.close()
    assert metadata.offset >= 0

    group = f"group-{uuid.uuid4().hex[:8]}"
    consumer = KafkaConsumer(topic, **consumer_config(bootstrap, group, "it-consumer"))
    received: list[ConsumerRecord] = []
    _consume_until(consumer, 1, received.append)
    consumer.close()
    assert [decode_record(r.key, r.value) for r in received] == [
        (order_id, {"type": "order.created"})
    ]


def test_offsets_move_only_after_the_handler_succeeds(bootstrap: str, topic: str) -> None:
    producer = KafkaProducer(**producer_config(bootstrap, "it-producer"))
    producer.send(topic, key="k", value={"n": 1}).get(10)
    producer.close()
    group = f"group-{uuid.uuid4().hex[:8]}"

    def fail(record: ConsumerRecord) -> None:
        raise RuntimeError("handler crashed before its effect was committed")

    first = KafkaConsumer(topic, **consumer_config(bootstrap, group, "it-first"))
    with pytest.raises(RuntimeError):
        _consume_until(first, 1, fail)
    first.close(autocommit=False)

    # The same group sees the record again: nothing was committed for it.
    second = KafkaConsumer(topic, **consumer_config(bootstrap, group, "it-second"))
    redelivered: list[ConsumerRecord] = []
    _consume_until(second, 1, redelivered.append)
    second.close()
    assert [decode_record(r.key, r.value)[1] for r in redelivered] == [{"n": 1}]

    # ...and once handled and committed, a third member of the group gets nothing.
    third = KafkaConsumer(topic, **consumer_config(bootstrap, group, "it-third"))
    assert not third.poll(timeout_ms=3000)
    third.close()
