"""The kit's outbox and inbox against the real Postgres and Kafka of the test stack:
only committed events leave, in order; each event's effect happens once however often it
is delivered; what cannot be handled ends in the dead-letter topic."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection

from kit import EventProducer, Postgres, ServiceSettings
from kit.consumer import EventConsumer, Handler
from kit.events import Event
from kit.kafka import ensure_topics
from kit.outbox import OutboxRelay, add_to_outbox
from shopctl.local import LocalStack
from tests.integration.kafka_io import produce, read_topic

pytestmark = pytest.mark.integration


class Harness:
    def __init__(self, db: Postgres, producer: EventProducer, bootstrap: str, topic: str) -> None:
        self.db, self.producer, self.bootstrap, self.topic = db, producer, bootstrap, topic


def consumer_of(harness: Harness, handle: Handler, **options: Any) -> EventConsumer:
    """A consumer of the harness's topic in a group of its own."""
    return EventConsumer(
        db=harness.db,
        producer=harness.producer,
        bootstrap_servers=harness.bootstrap,
        topics=[harness.topic],
        group=f"it-group-{uuid.uuid4().hex[:6]}",
        handle=handle,
        service="kit-it",
        **options,
    )


@pytest.fixture
async def harness(stack: LocalStack, tmp_path: Path) -> AsyncIterator[Harness]:
    name = f"kit_it_{uuid.uuid4().hex[:8]}"
    admin = stack.topology.postgres_admin_url()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    (tmp_path / "0001_effects.sql").write_text(
        "CREATE TABLE effects (event_id uuid PRIMARY KEY, key text NOT NULL);"
        "CREATE TABLE orders_demo (id uuid PRIMARY KEY);"
    )
    bootstrap = stack.topology.kafka_bootstrap()
    settings = ServiceSettings(
        service_name="kit-it",
        database_url=admin.replace("/postgres?", f"/{name}?"),
        kafka_bootstrap_servers=bootstrap,
    )
    db = Postgres(settings, migrations_dir=tmp_path, messaging=True)
    producer = EventProducer(settings)
    topic = f"it-events-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, {topic: 3, f"{topic}.dlq": 1})
    await db.start()
    await producer.start()
    try:
        await asyncio.wait_for(db.migrated.wait(), 30)
        yield Harness(db, producer, bootstrap, topic)
    finally:
        await producer.stop()
        await db.stop()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


async def test_only_committed_events_leave_and_in_order(harness: Harness) -> None:
    order_ids = [str(uuid.uuid4()) for _ in range(5)]
    committed = []
    for n in range(40):
        key = order_ids[n % 5]
        event = Event(type="order.created", key=key, data={"n": n}, producer="kit-it")
        async with harness.db.connection() as conn, conn.transaction():
            await conn.execute("INSERT INTO orders_demo (id) VALUES (%s)", (uuid.uuid4(),))
            await add_to_outbox(conn, topic=harness.topic, event=event)
        committed.append(event)
    ghost = Event(type="order.created", key=order_ids[0], data={"n": -1}, producer="kit-it")
    with pytest.raises(RuntimeError):
        async with harness.db.connection() as conn, conn.transaction():
            await add_to_outbox(conn, topic=harness.topic, event=ghost)
            raise RuntimeError("the business change failed; its event must not leave")

    relay = OutboxRelay(harness.db, harness.producer, service="kit-it", batch_size=15)
    published = 0
    while (batch := await relay.publish_batch()) > 0:
        published += batch
    assert published == 40

    seen = await asyncio.to_thread(read_topic, harness.bootstrap, harness.topic, 40)
    assert len(seen) == 40
    assert all(value["data"]["n"] != -1 for _, value in seen)  # type: ignore[index]
    for key in order_ids:  # per key (one partition each), commit order is kept
        ns = [value["data"]["n"] for k, value in seen if k == key]  # type: ignore[index]
        assert ns == sorted(ns) and len(ns) == 8
    first = seen[0][1]
    assert set(first) == {"event_id", "type", "version", "occurred_at", "producer", "key", "data"}  # type: ignore[arg-type]


async def test_a_commit_wakes_the_relay_without_waiting_for_its_next_look(
    harness: Harness,
) -> None:
    # It would look on its own only after 60 s; the commit's notification wakes it.
    relay = OutboxRelay(harness.db, harness.producer, service="kit-it", idle_seconds=60)
    await relay.start()
    try:
        await asyncio.sleep(1)  # its first round finds nothing and it starts listening
        events = []
        for n in range(3):
            event = Event(type="order.created", key=f"k-{n}", data={"n": n}, producer="kit-it")
            async with harness.db.connection() as conn, conn.transaction():
                await add_to_outbox(conn, topic=harness.topic, event=event)
            events.append(event)
            await asyncio.sleep(0.2)
        seen = await asyncio.to_thread(read_topic, harness.bootstrap, harness.topic, 3, 20)
    finally:
        await relay.stop()
    assert sorted(value["data"]["n"] for _, value in seen) == [0, 1, 2]  # type: ignore[index]


async def test_each_event_takes_effect_once_and_failures_are_dead_lettered(
    harness: Harness,
) -> None:
    async def handle(conn: AsyncConnection, event: Event) -> None:
        if event.type == "order.exploded":
            raise ValueError("this handler cannot take it")
        await conn.execute(
            "INSERT INTO effects (event_id, key) VALUES (%s, %s)", (event.event_id, event.key)
        )

    events = [
        Event(type="order.created", key=str(uuid.uuid4()), data={}, producer="kit-it")
        for _ in range(20)
    ]
    poison = Event(type="order.exploded", key="k", data={}, producer="kit-it")
    # The first ten delivered twice, then a poison event and a record that is not JSON.
    twice = [(event.key, event.envelope()) for event in [*events, *events[:10], poison]]
    produce(harness.bootstrap, harness.topic, [*twice, (b"junk", b"{not json")])

    consumer = consumer_of(harness, handle, max_attempts=3)
    await consumer.start()
    try:
        dead = await asyncio.to_thread(read_topic, harness.bootstrap, f"{harness.topic}.dlq", 2)
        for _ in range(100):
            async with harness.db.connection() as conn:
                count = await (await conn.execute("SELECT count(*) FROM effects")).fetchone()
            if count == (20,):
                break
            await asyncio.sleep(0.2)
    finally:
        await consumer.stop()

    assert count == (20,)  # 30 deliveries of 20 events: 20 effects
    reasons = sorted(json.dumps(value) for _, value in dead)
    assert len(dead) == 2
    assert any("cannot take it" in r for r in reasons)
    assert any("not JSON" in r for r in reasons)
    async with harness.db.connection() as conn:
        recorded = await (await conn.execute("SELECT count(*) FROM processed_events")).fetchone()
        exploded = await (
            await conn.execute(
                "SELECT count(*) FROM processed_events WHERE event_id = %s", (poison.event_id,)
            )
        ).fetchone()
    assert recorded == (20,)
    assert exploded == (0,)  # its failed attempts were rolled back with their effect


async def test_keys_are_handled_at_once_each_in_its_own_order(harness: Harness) -> None:
    """One partition, three orders' events interleaved: a slow order holds up only its
    own events, never reorders them, and a failure that outlasts the patience is read
    again without taking any effect twice."""
    keys = ["slow", "quick", "flaky"]
    records = [
        (key, Event(type="order.step", key=key, data={"n": n}, producer="kit-it"))
        for n in range(10)
        for key in keys
    ]
    produce(harness.bootstrap, harness.topic, [(k, e.envelope()) for k, e in records], 0)
    async with harness.db.connection() as conn, conn.transaction():
        await conn.execute("ALTER TABLE effects ADD COLUMN seq bigserial")
    in_flight, most_at_once, failed_once = 0, 0, False

    async def handle(conn: AsyncConnection, event: Event) -> None:
        nonlocal in_flight, most_at_once, failed_once
        in_flight += 1
        most_at_once = max(most_at_once, in_flight)
        try:
            if event.key == "slow":
                await asyncio.sleep(0.05)
            if event.key == "flaky" and event.data["n"] == 4 and not failed_once:
                failed_once = True
                await asyncio.sleep(0.3)  # past the patience below: the record is read again
                raise psycopg.OperationalError("the database went away for a moment")
            await conn.execute(
                "INSERT INTO effects (event_id, key) VALUES (%s, %s)",
                (event.event_id, f"{event.key}:{event.data['n']}"),
            )
        finally:
            in_flight -= 1

    consumer = consumer_of(harness, handle, transient_patience_seconds=0.2)
    await consumer.start()
    try:
        for _ in range(150):
            async with harness.db.connection() as conn:
                rows = await (await conn.execute("SELECT key FROM effects ORDER BY seq")).fetchall()
            if len(rows) >= 30:
                break
            await asyncio.sleep(0.2)
    finally:
        await consumer.stop()

    applied = [row[0] for row in rows]
    assert len(applied) == 30 == len(set(applied))  # each once, the flaky one included
    for key in keys:
        assert [a for a in applied if a.startswith(key + ":")] == [f"{key}:{n}" for n in range(10)]
    assert most_at_once > 1
    assert failed_once
    # The slow order's events did not hold the quick one's back.
    assert applied.index("quick:9") < applied.index("slow:9")


async def test_dead_letters_can_be_replayed_to_their_topic(harness: Harness) -> None:
    from shopctl.dlq import replay

    event = Event(type="order.created", key="k-replay", data={"n": 1}, producer="kit-it")
    dlq = f"{harness.topic}.dlq"
    produce(
        harness.bootstrap,
        dlq,
        [
            ("k-replay", {"reason": "x", "topic": harness.topic, "record": event.envelope()}),
            ("junk", {"reason": "not JSON", "topic": harness.topic, "record": "{not json"}),
        ],
    )
    assert await asyncio.to_thread(replay, harness.bootstrap, dlq) == (1, 1)
    assert await asyncio.to_thread(replay, harness.bootstrap, dlq) == (0, 0)  # once
    back = await asyncio.to_thread(read_topic, harness.bootstrap, harness.topic, 1)
    assert [value["event_id"] for _, value in back] == [str(event.event_id)]  # type: ignore[index]
