"""Harness for the SLA processor tests: private topics, fresh Faust apps, produce/collect helpers.

Every test gets topics with a random suffix (created explicitly: broker auto-creation is off) and
builds its apps with a random app id, so tables never leak between tests. Fixtures return
factories; everything created is deleted afterwards (including Faust's internal topics, which
all start with the app id).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from schemas.base import encode
from schemas.events import ClientPolicyChanged, InteractionEvent
from schemas.facts import Fact
from schemas.topics import ALL_TOPICS
from shinrai.settings import KafkaSettings, Settings, WorkerSettings
from shinrai.topic_admin import ensure_topics
from streams.processor import ProcessorStats, ProcessorTopics, attach_processor
from tests.kafka_records import items

PARTITIONS = 3
TOTAL_WAIT_S = 60.0


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Received:
    """One record read back, with the wall-clock instant the test consumer got it."""

    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    partition: int
    offset: int
    received_at: datetime


@dataclass
class Collector:
    """Reads one topic from the start in the background; ``wait_for`` polls what arrived."""

    topic: str
    records: list[Received] = field(default_factory=list)

    def facts(self) -> list[Fact]:
        return [Fact.model_validate_json(r.value) for r in self.records if r.value]

    async def wait_for(
        self, predicate: Callable[[list[Received]], bool], within: float = TOTAL_WAIT_S
    ) -> list[Received]:
        deadline = time.monotonic() + within
        while not predicate(self.records):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out on {self.topic}: got {len(self.records)} records")
            await asyncio.sleep(0.02)
        return self.records


CollectorFactory = Callable[[str], Awaitable[Collector]]


@dataclass
class Env:
    """One test's private topics, settings and helpers."""

    suffix: str
    topics: ProcessorTopics
    settings: Settings
    kafka: KafkaSettings
    datadir: Path
    app_ids: list[str] = field(default_factory=list)

    def new_app_id(self) -> str:
        app_id = f"test-proc-{uuid.uuid4().hex[:10]}"
        self.app_ids.append(app_id)
        return app_id

    def build(self, app_id: str, datadir: Path | None = None) -> tuple[Any, ProcessorStats]:
        """A fresh Faust app with the processor attached (not started)."""
        from streams.app import build_app

        app = build_app(
            self.settings,
            app_id=app_id,
            store=self.settings.worker.store,
            datadir=str(datadir or self.datadir),
            topic_partitions=PARTITIONS,
        )
        stats = attach_processor(app, self.settings, self.topics)
        return app, stats

    def produce(self, topic: str, records: list[tuple[bytes | None, bytes | None]]) -> None:
        """Produce (key, value) records synchronously, acks=all, in order."""
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=self.kafka.bootstrap, acks="all", linger_ms=0)
        try:
            for key, value in records:
                producer.send(topic, key=key, value=value).get(timeout=30)
        finally:
            producer.close()

    def produce_bulk(
        self, topic: str, events: Sequence[InteractionEvent | ClientPolicyChanged]
    ) -> None:
        """Produce events as a bulk importer does (batched, lingering), then flush once."""
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=self.kafka.bootstrap, acks="all", linger_ms=20)
        try:
            for event in events:
                producer.send(topic, key=event.key, value=encode(event))
            producer.flush(timeout=30)
        finally:
            producer.close()

    async def send_events(self, events: Sequence[InteractionEvent | ClientPolicyChanged]) -> None:
        recs: list[tuple[bytes | None, bytes | None]] = [(e.key, encode(e)) for e in events]
        await asyncio.to_thread(self.produce, self.topics.interactions, recs)


@pytest.fixture
def processor_env(kafka_settings: KafkaSettings, tmp_path: Path) -> Iterator[Callable[[], Env]]:
    """``processor_env() -> Env``: private topics (all of ``schemas.topics``) + settings."""
    made: list[Env] = []

    def make() -> Env:
        suffix = f"-{uuid.uuid4().hex[:10]}"
        kafka = kafka_settings.model_copy(update={"topic_partitions": PARTITIONS})
        ensure_topics(kafka, ALL_TOPICS, suffix=suffix)
        datadir = tmp_path / f"worker{len(made)}"
        datadir.mkdir()
        settings = Settings(
            kafka=kafka,
            worker=WorkerSettings(store="rocksdb://", data_dir=datadir, tick_interval_s=0.1),
        )
        env = Env(suffix, ProcessorTopics.default(suffix), settings, kafka, datadir)
        made.append(env)
        return env

    yield make
    if not made:
        return
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap)
    try:
        names = admin.list_topics()
        doomed = [
            n
            for n in names
            if any(n.endswith(e.suffix) or any(n.startswith(a) for a in e.app_ids) for e in made)
        ]
        if doomed:
            admin.delete_topics(doomed)
    except Exception:
        pass
    finally:
        admin.close()


@pytest.fixture
async def collector(kafka_settings: KafkaSettings) -> AsyncIterator[CollectorFactory]:
    """``collector(topic) -> Collector``: a background aiokafka reader from the earliest offset."""
    from aiokafka import AIOKafkaConsumer

    tasks: list[asyncio.Task[None]] = []
    consumers: list[Any] = []

    async def run(consumer: Any, out: Collector) -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=50)
            stamp = now()
            for tp, messages in batch.items():
                for m in messages:
                    # a batch record (facts, accepted) stands for its items: one each
                    for value in items(m.value):
                        out.records.append(
                            Received(m.key, value, dict(m.headers), tp.partition, m.offset, stamp)
                        )

    async def start(topic: str) -> Collector:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_settings.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        consumers.append(consumer)
        out = Collector(topic)
        tasks.append(asyncio.create_task(run(consumer, out)))
        return out

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for consumer in consumers:
        await consumer.stop()


async def wait_until(predicate: Callable[[], bool], within: float = TOTAL_WAIT_S) -> None:
    """Poll ``predicate`` until it holds (fails the test after ``within`` seconds)."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)
