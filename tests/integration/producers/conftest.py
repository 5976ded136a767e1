"""Fixtures for producer tests against the real Kafka broker (random topic names per test)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from tests.unit.producers.conftest import quiet_kafka_import

quiet_kafka_import()

from kafka import KafkaConsumer  # noqa: E402  (after the warning-free import above)
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402


@dataclass(frozen=True)
class Record:
    """One record read back from a topic."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


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
    """Factory: every record of ``topic`` once ``count`` arrived (fails after ``timeout_s``).

    After ``count`` records it keeps polling briefly, so extra (duplicated) records are returned
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
                if settle is None and len(records) >= count:
                    settle = time.monotonic() + 1.0
        finally:
            consumer.close()
        return records

    return read
