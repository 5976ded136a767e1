"""Validated events produced with kafka-python, read back with aiokafka and with a Faust agent."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from schemas import Channel, Direction, InteractionEvent, Kind, decode, encode
from shinrai.errors import ValidationFailed
from shinrai.settings import KafkaSettings, Settings

pytestmark = pytest.mark.integration

CLIENTS = ("acme", "globex", "initech", "umbrella", "hooli", "stark")


def make_events(n: int) -> list[InteractionEvent]:
    t0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    return [
        InteractionEvent(
            event_id=f"ev-{i}",
            channel=Channel.EMAIL,
            kind=Kind.MESSAGE,
            direction=Direction.INBOUND if i % 3 else Direction.OUTBOUND,
            occurred_at=t0 + timedelta(minutes=i),
            recorded_at=t0 + timedelta(minutes=i, seconds=3),
            client_id=CLIENTS[i % len(CLIENTS)],
            thread_key=f"t-{i // 4}",
        )
        for i in range(n)
    ]


def produce(settings: KafkaSettings, topic: str, events: list[InteractionEvent]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=settings.bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    try:
        futures = [producer.send(topic, key=e.key, value=encode(e)) for e in events]
        producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=30)  # raises if any delivery failed
    finally:
        producer.close()


def assert_one_partition_per_client(seen: list[tuple[bytes, int]]) -> None:
    partitions: dict[bytes, set[int]] = defaultdict(set)
    for key, partition in seen:
        partitions[key].add(partition)
    assert set(partitions) == {c.encode() for c in CLIENTS}
    assert all(len(p) == 1 for p in partitions.values()), partitions
    # With 6 clients over 4 partitions the keys must actually spread (not all on one partition).
    assert len({next(iter(p)) for p in partitions.values()}) > 1


async def test_kafka_python_to_aiokafka(
    kafka_settings: KafkaSettings, topic_factory: Callable[..., str]
) -> None:
    from aiokafka import AIOKafkaConsumer

    topic = topic_factory("roundtrip", partitions=4)
    events = make_events(60)
    await asyncio.to_thread(produce, kafka_settings, topic, events)

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_settings.bootstrap,
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list[InteractionEvent] = []
    seen: list[tuple[bytes, int]] = []
    try:
        async with asyncio.timeout(60):
            while len(received) < len(events):
                batch = await consumer.getmany(timeout_ms=1000)
                for tp, messages in batch.items():
                    for message in messages:
                        assert message.key is not None
                        assert message.value is not None
                        received.append(decode(InteractionEvent, message.value))
                        seen.append((message.key, tp.partition))
    finally:
        await consumer.stop()

    assert sorted(received, key=lambda e: e.event_id) == sorted(events, key=lambda e: e.event_id)
    assert_one_partition_per_client(seen)
    # Per client, order is preserved (one partition = one ordered log).
    for client in CLIENTS:
        mine = [e.event_id for e in received if e.client_id == client]
        assert mine == [e.event_id for e in events if e.client_id == client]


async def test_faust_agent_reads_the_same_events(
    kafka_settings: KafkaSettings, topic_factory: Callable[..., str], tmp_path: object
) -> None:
    from streams.app import build_app

    topic_name = topic_factory("faust", partitions=4)
    events = make_events(40)
    await asyncio.to_thread(produce, kafka_settings, topic_name, events)

    app = build_app(
        Settings(kafka=kafka_settings),
        app_id=f"test-faust-{uuid.uuid4().hex[:8]}",
        store="memory://",
        datadir=str(tmp_path),
        topic_partitions=4,
    )
    topic = app.topic(topic_name, key_type=bytes, value_type=bytes)
    received: list[InteractionEvent] = []
    seen: list[tuple[bytes, int]] = []
    done = asyncio.Event()

    @app.agent(topic)
    async def collect(stream):  # type: ignore[no-untyped-def]
        async for event in stream.events():
            received.append(decode(InteractionEvent, event.value))
            seen.append((event.key, event.message.partition))
            if len(received) >= len(events):
                done.set()

    await app.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=90)
    finally:
        await app.stop()

    assert sorted(received, key=lambda e: e.event_id) == sorted(events, key=lambda e: e.event_id)
    assert_one_partition_per_client(seen)


def test_invalid_payload_is_rejected_with_a_clear_error(
    kafka_settings: KafkaSettings, topic_factory: Callable[..., str]
) -> None:
    """A payload that is on the topic but invalid decodes to a ValidationFailed naming the field."""
    from kafka import KafkaConsumer, KafkaProducer

    topic = topic_factory("invalid", partitions=1)
    bad = b'{"event_id": "x", "channel": "email", "kind": "message", "direction": "sideways"}'
    producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap, acks="all")
    producer.send(topic, key=b"acme", value=bad).get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_settings.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=20000,
    )
    try:
        message = next(iter(consumer))
    finally:
        consumer.close()
    with pytest.raises(ValidationFailed) as info:
        decode(InteractionEvent, message.value)
    fields = {field for field, _ in info.value.errors}
    assert {"direction", "occurred_at", "recorded_at"} <= fields
    assert info.value.raw == bad
