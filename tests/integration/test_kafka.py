import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Consumer, Message

from kit.kafka import (
    consume,
    consumer_config,
    decode_record,
    ensure_topics,
    next_records,
    producer_config,
)
from shopctl.local import LocalStack
from tests.integration.kafka_io import produce

pytestmark = pytest.mark.integration


@pytest.fixture
def bootstrap(stack: LocalStack) -> str:
    return stack.topology.kafka_bootstrap()


@pytest.fixture
def topic(bootstrap: str) -> str:
    name = f"it-{uuid.uuid4().hex[:8]}"
    assert ensure_topics(bootstrap, {name: 3}) == [name]
    assert ensure_topics(bootstrap, {name: 3}) == []  # idempotent
    return name


def _member(bootstrap: str, topic: str, group: str, name: str) -> Consumer:
    consumer = Consumer(consumer_config(bootstrap, group, name))
    consumer.subscribe([topic])
    return consumer


def _consume_until(consumer: Consumer, want: int, handle: Any) -> None:
    deadline = time.monotonic() + 30
    seen: list[Message] = []

    def collect(record: Message) -> None:
        handle(record)
        seen.append(record)

    consume(
        consumer,
        collect,
        should_stop=lambda: len(seen) >= want or time.monotonic() > deadline,
    )


def test_acks_all_message_reaches_a_consumer_group(bootstrap: str, topic: str) -> None:
    config = producer_config(bootstrap, "it-producer")
    assert config["acks"] == "all" and config["enable.idempotence"] is True
    order_id = str(uuid.uuid4())
    produce(bootstrap, topic, [(order_id, {"type": "order.created"})])

    consumer = _member(bootstrap, topic, f"group-{uuid.uuid4().hex[:8]}", "it-consumer")
    received: list[Message] = []
    _consume_until(consumer, 1, received.append)
    consumer.close()
    assert [decode_record(r.key(), r.value()) for r in received] == [
        (order_id, {"type": "order.created"})
    ]


def test_offsets_move_only_after_the_handler_succeeds(bootstrap: str, topic: str) -> None:
    produce(bootstrap, topic, [("k", {"n": 1})])
    group = f"group-{uuid.uuid4().hex[:8]}"

    def fail(record: Message) -> None:
        raise RuntimeError("handler crashed before its effect was committed")

    first = _member(bootstrap, topic, group, "it-first")
    with pytest.raises(RuntimeError):
        _consume_until(first, 1, fail)
    first.close()

    # The same group sees the record again: nothing was committed for it.
    second = _member(bootstrap, topic, group, "it-second")
    redelivered: list[Message] = []
    _consume_until(second, 1, redelivered.append)
    second.close()
    assert [decode_record(r.key(), r.value())[1] for r in redelivered] == [{"n": 1}]

    # ...and once handled and committed, a third member of the group gets nothing.
    third = _member(bootstrap, topic, group, "it-third")
    deadline = time.monotonic() + 5
    extra: list[Message] = []
    while time.monotonic() < deadline:
        extra += next_records(third, 10, 0.5)
    third.close()
    assert extra == []
