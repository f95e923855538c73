"""shopctl's questions to Kafka, through confluent-kafka's AdminClient: does the broker
answer, are the saga's consumer groups stable, and how many records they have yet to
commit. Every call is bounded by its timeout, whatever state the broker is in.

The AdminClient runs in a child process, never in the caller's. librdkafka aborts the
process on its own assertions while brokers come and go (an admin request's reference
count under a coordinator that died, confluentinc/librdkafka#4605), and destroys a client
collected on its own thread (confluent-kafka-python#2129): both took the whole test
session down in the middle of a Kafka experiment. Here a crash, or a call that outlives
its timeout, costs one unanswered question; the child is killed and the next question
gets a fresh one."""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient

T = TypeVar("T")

# What a child is given on top of a call's own timeout: its start (importing the client)
# and the answer's way back.
_MARGIN_S = 5.0


def _serve(conn: Connection) -> None:
    """The child: answer calls one at a time until the parent hangs up."""
    while True:
        try:
            call, args = conn.recv()
        except EOFError:
            return
        try:
            conn.send((True, call(*args)))
        except Exception as error:
            conn.send((False, repr(error)))


class _Child:
    def __init__(self, margin: float) -> None:
        self.margin = margin
        self._process: Any = None
        self._conn: Connection | None = None

    def ask(self, call: Callable[..., T], args: tuple[Any, ...], timeout: float) -> T:
        if self._conn is None or not self._process.is_alive():
            self._start()
        assert self._conn is not None
        try:
            self._conn.send((call, args))
            if not self._conn.poll(timeout + self.margin):
                raise TimeoutError(f"no answer within {timeout + self.margin:.0f} s")
            ok, value = self._conn.recv()
        except (EOFError, OSError) as died:
            self._stop()
            raise TimeoutError("the Kafka admin child process died") from died
        except TimeoutError:
            self._stop()
            raise
        if not ok:
            raise RuntimeError(f"{call.__name__} failed in the child: {value}")
        return value  # type: ignore[no-any-return]

    def _start(self) -> None:
        self._stop()
        # spawn: the caller has threads (a lag watch, librdkafka's own), and a forked
        # copy of a process with threads can deadlock.
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        self._process = context.Process(target=_serve, args=(theirs,), daemon=True)
        self._process.start()
        theirs.close()
        self._conn = ours

    def _stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join()
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None


class _Children:
    """Two children (a lag watch may ask while a readiness wait does), each answering
    one question at a time."""

    def __init__(self, count: int = 2, margin: float = _MARGIN_S) -> None:
        self._idle: queue.SimpleQueue[_Child] = queue.SimpleQueue()
        for _ in range(count):
            self._idle.put(_Child(margin))

    def ask(self, call: Callable[..., T], *args: Any, timeout: float) -> T:
        """`call(*args)` in a child; TimeoutError when no answer comes in time, whether
        the child is slow or died."""
        child = self._idle.get()
        try:
            return child.ask(call, args, timeout)
        finally:
            self._idle.put(child)


_children = _Children()


def admin_client(bootstrap: str) -> AdminClient:
    """A client made for one question (in the child): a client kept across a Kafka
    restart stopped seeing its consumer groups stable."""
    from confluent_kafka.admin import AdminClient

    from kit.kafka import REQUEST_TIMEOUT_MS

    return AdminClient(
        {
            "bootstrap.servers": bootstrap,
            "client.id": "shopctl",
            "socket.connection.setup.timeout.ms": REQUEST_TIMEOUT_MS,
            # A broker that is away is an answer here, not something to log.
            "log_level": 0,
        }
    )


def cluster_answers(bootstrap: str, timeout: float = 2.0) -> bool:
    """The broker(s) at `bootstrap` answer a metadata request."""
    try:
        return _children.ask(_cluster_answers, bootstrap, timeout, timeout=timeout)
    except TimeoutError:
        return False


def stable_members(bootstrap: str, groups: Iterable[str], timeout: float = 3.0) -> dict[str, int]:
    """Members of each group that is Stable; a group still forming, empty or unknown, or a
    broker that does not answer, counts 0."""
    names = list(groups)
    try:
        return _children.ask(_stable_members, bootstrap, names, timeout, timeout=timeout)
    except TimeoutError:
        return dict.fromkeys(names, 0)


def uncommitted(bootstrap: str, groups: Iterable[str], timeout: float = 3.0) -> int:
    """Records the groups have yet to commit, over every partition they have committed on.
    TimeoutError when Kafka does not answer."""
    waiting = _children.ask(_uncommitted, bootstrap, list(groups), timeout, timeout=3 * timeout)
    if waiting is None:
        raise TimeoutError("Kafka did not answer")
    return waiting


# What the child runs: each takes the address, so that the client lives there, and
# answers plain values (librdkafka's errors do not cross a process boundary).


def _cluster_answers(bootstrap: str, timeout: float) -> bool:
    from confluent_kafka import KafkaException

    try:
        admin_client(bootstrap).list_topics(timeout=timeout)
    except KafkaException:
        return False
    return True


def _stable_members(bootstrap: str, names: list[str], timeout: float) -> dict[str, int]:
    return count_stable(admin_client(bootstrap), names, timeout)


def count_stable(admin: AdminClient, names: list[str], timeout: float) -> dict[str, int]:
    from confluent_kafka import ConsumerGroupState, KafkaException

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


def _uncommitted(bootstrap: str, groups: list[str], timeout: float) -> int | None:
    from confluent_kafka import KafkaException

    try:
        return count_uncommitted(admin_client(bootstrap), groups, timeout)
    except (KafkaException, TimeoutError):
        return None


def count_uncommitted(admin: AdminClient, groups: list[str], timeout: float) -> int:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin._listoffsets import OffsetSpec

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
