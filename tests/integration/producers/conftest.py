"""Fixtures for producer tests against the real Kafka broker (random topic names per test)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import pytest

from schemas.batches import split
from tests.unit.producers.conftest import quiet_kafka_import

quiet_kafka_import()

from kafka import KafkaConsumer  # noqa: E402  (after the warning-free import above)
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402
from kafka.partitioner.default import murmur2  # noqa: E402


@dataclass(frozen=True)
class Record:
    """One record read back from a topic."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


@dataclass(frozen=True)
class Item:
    """One event a topic holds: a single record, or one item of an ``event_batch`` record."""

    record: Record
    index: int | None  # its position in its batch record; None for a single record
    value: bytes

    @property
    def partition(self) -> int:
        return self.record.partition


def items_of(records: Sequence[Record]) -> list[Item]:
    """The events of ``records`` in log order, batch records expanded (``schemas.batches``)."""
    items: list[Item] = []
    for record in records:
        batch = split(record.value)
        if batch is None:
            items.append(Item(record, None, record.value or b""))
        else:
            items.extend(Item(record, i, value) for i, value in enumerate(batch[1]))
    return items


def kafka_partition(key: bytes, partitions: int) -> int:
    """The partition kafka-python's own default partitioner gives ``key`` (its murmur2)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@pytest.fixture(scope="session")
def broker(kafka_bootstrap: str) -> str:
    """Bootstrap of the broker under test (the lead's fixture: fails fast when it is down)."""
    return kafka_bootstrap


@pytest.fixture
def make_topic(broker: str) -> Iterator[Callable[..., str]]:
    """Factory: create a topic with a random name and N partitions; deleted after the test."""
    admin = KafkaAdminClient(bootstrap_servers=broker, request_timeout_ms=15_000)
    created: list[str] = []

    def make(prefix: str = "test-producers", partitions: int = 1) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        created.append(name)
        return name

    yield make
    if created:
        admin.delete_topics(created)
    admin.close()


@pytest.fixture
def read_topic(broker: str) -> Callable[..., list[Record]]:
    """Factory: every record of ``topic`` once ``count`` events arrived (a batch record counts
    as its items), or after ``timeout_s``.

    After ``count`` events it keeps polling briefly, so extra (duplicated) records are returned
    too and the test can see them.
    """

    def read(topic: str, count: int, timeout_s: float = 20.0) -> list[Record]:
        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=broker,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
        )
        records: list[Record] = []
        deadline = time.monotonic() + timeout_s
        settle: float | None = None
        try:
            while time.monotonic() < deadline and (settle is None or time.monotonic() < settle):
                for batch in consumer.poll(timeout_ms=200).values():
                    records.extend(
                        Record(
                            partition=m.partition,
                            offset=m.offset,
                            key=m.key,
                            value=m.value,
                            headers=dict(m.headers or []),
                        )
                        for m in batch
                    )
                if settle is None and len(items_of(records)) >= count:
                    settle = time.monotonic() + 1.0
        finally:
            consumer.close()
        return records

    return read
