"""shopctl's questions to Kafka, through confluent-kafka's AdminClient: does the broker
answer, are the saga's consumer groups stable, and how many records they have yet to
commit. Every call is bounded by its timeout, whatever state the broker is in."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from confluent_kafka import (
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._listoffsets import OffsetSpec

from kit.kafka import REQUEST_TIMEOUT_MS


@cache
def admin_client(bootstrap: str) -> AdminClient:
    """One client per address for the life of the process. An AdminClient let go while
    its futures are pending can be collected by a garbage collection that runs on
    librdkafka's own callback thread, which destroys the client from that thread and
    crashes the process (confluent-kafka-python#2129, librdkafka#4605): it took the
    test session down in the middle of a flash sale, whose lag watch answers in a thread
    while a readiness wait made a client every half second."""
    return AdminClient(
        {
            "bootstrap.servers": bootstrap,
            "client.id": "shopctl",
            "socket.connection.setup.timeout.ms": REQUEST_TIMEOUT_MS,
            # A broker that is away is an answer here, not something to log.
            "log_level": 0,
        }
    )


def cluster_answers(admin: AdminClient, timeout: float = 2.0) -> bool:
    try:
        admin.list_topics(timeout=timeout)
    except KafkaException:
        return False
    return True


def stable_members(
    admin: AdminClient, groups: Iterable[str], timeout: float = 3.0
) -> dict[str, int]:
    """Members of each group that is Stable; a group still forming, empty or unknown, or a
    broker that does not answer, counts 0."""
    names = list(groups)
    found = dict.fromkeys(names, 0)
    try:
        futures = admin.describe_consumer_groups(names, request_timeout=timeout)
        for group, future in futures.items():
            description = future.result(timeout)
            if description.state == ConsumerGroupState.STABLE:
                found[group] = len(description.members)
    except (KafkaException, TimeoutError):
        # TimeoutError: the future may still be pending when our own wait ends (a cluster
        # that just lost its leader answers late), and it counts 0 like any non-answer.
        pass
    return found


def uncommitted(admin: AdminClient, groups: Iterable[str], timeout: float = 3.0) -> int:
    """Records the groups have yet to commit, over every partition they have committed on."""
    committed: list[TopicPartition] = []
    for group in groups:
        # librdkafka answers one group per request.
        request = [ConsumerGroupTopicPartitions(group)]
        for future in admin.list_consumer_group_offsets(request, request_timeout=timeout).values():
            committed += [tp for tp in future.result(timeout).topic_partitions if tp.offset >= 0]
    if not committed:
        return 0
    end = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    latest = {TopicPartition(tp.topic, tp.partition): end for tp in committed}
    ends = {
        (tp.topic, tp.partition): future.result(timeout).offset
        for tp, future in admin.list_offsets(latest, request_timeout=timeout).items()
    }
    return sum(ends[(tp.topic, tp.partition)] - tp.offset for tp in committed)
