"""The ClickHouse runner on a real broker reads batch records beside single records: every
item a row at its batch record's offset, every offset committed (real Kafka, real chdb)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import orjson
import pytest

from schemas.base import encode
from schemas.batches import EVENT_BATCH, FACT_BATCH, join, partition_for
from schemas.facts import FactKind
from shinrai.metrics import WorkerMetrics
from shinrai.settings import ClickHouseSettings, KafkaSettings
from sinks.clickhouse.runner import ClickHouseRunner
from sinks.clickhouse.sink import ClickHouseSink
from tests.builders import fact, interaction
from tests.integration.pipeline.scenario import group_caught_up, now, wait_until
from tests.kafka_records import items

pytestmark = pytest.mark.integration

PARTITIONS = 2


def produce(
    bootstrap: str, topic: str, records: list[tuple[bytes, bytes, int | None]]
) -> list[tuple[int, int]]:
    """Send (key, value, partition) records; their (partition, offset) as acknowledged."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        out = []
        for key, value, partition in records:
            meta = producer.send(topic, key=key, value=value, partition=partition).get(timeout=30)
            out.append((meta.partition, meta.offset))
        return out
    finally:
        producer.close()


async def test_runner_writes_every_item_of_batch_records_at_their_offsets(
    kafka_settings: KafkaSettings,
    topic_factory: Callable[..., str],
    ch_settings: Callable[..., ClickHouseSettings],
) -> None:
    facts_topic = topic_factory("batch-facts", partitions=PARTITIONS)
    events_topic = topic_factory("batch-events", partitions=PARTITIONS)
    t = now() - timedelta(hours=1)
    clients = [f"bat-{n}-{uuid.uuid4().hex[:6]}" for n in range(6)]
    events = [interaction(t + timedelta(seconds=n), client=c) for n in range(5) for c in clients]
    facts = [
        fact(FactKind.SILENCE, f"f-{n}-{c}", t + timedelta(seconds=n), client_id=c)
        for n in range(5)
        for c in clients
    ]
    # Per partition of the keys, as the processor writes them: batches of 4, and a single
    # record of the last item of each partition.
    sent: list[tuple[str, bytes, bytes, int | None]] = []
    for topic, kind, values in (
        (events_topic, EVENT_BATCH, [(e.key, encode(e)) for e in events]),
        (facts_topic, FACT_BATCH, [(f.client_id.encode(), encode(f)) for f in facts]),
    ):
        per: dict[int, list[tuple[bytes, bytes]]] = {}
        for key, value in values:
            per.setdefault(partition_for(key, PARTITIONS), []).append((key, value))
        for partition, chunked in per.items():
            *batched, last = chunked
            for start in range(0, len(batched), 4):
                chunk = batched[start : start + 4]
                value = join(kind, [v for _, v in chunk])
                sent.append((topic, chunk[0][0], value, partition))
            sent.append((topic, last[0], last[1], None))
    acks = {}
    for topic in (events_topic, facts_topic):
        mine = [(k, v, p) for t_, k, v, p in sent if t_ == topic]
        acks[topic] = await asyncio.to_thread(produce, kafka_settings.bootstrap, topic, mine)

    metrics = WorkerMetrics()
    executor = ThreadPoolExecutor(max_workers=1)
    sink = ClickHouseSink(ch_settings(batch_age_s=0.2))
    await asyncio.get_running_loop().run_in_executor(executor, sink.setup)
    group = f"batch-{uuid.uuid4().hex[:8]}"
    runner = ClickHouseRunner(
        kafka_settings, sink, facts_topic=facts_topic, interactions_topic=events_topic,
        group_id=group, metrics=metrics, executor=executor, batch_rows=1000,
        session_timeout_s=6,
    )  # fmt: skip
    await runner.start()

    def caught_up() -> bool:
        return group_caught_up(kafka_settings.bootstrap, group, [facts_topic, events_topic])

    def query(sql: str) -> list[Any]:
        return list(sink.client.query(sql).result_rows)

    try:
        await wait_until(caught_up, 30, "every record flushed and committed", every=0.5)
        loop = asyncio.get_running_loop()
        stored_events = await loop.run_in_executor(
            executor, query, "SELECT event_id, partition, offset FROM interactions"
        )
        stored_facts = await loop.run_in_executor(
            executor, query, "SELECT fact_id, partition, offset FROM sla_facts"
        )
    finally:
        await runner.stop()
        await asyncio.get_running_loop().run_in_executor(executor, sink.close)
        executor.shutdown()
    # Each item's row carries the (partition, offset) its batch record was acknowledged at.
    for topic, stored, field in (
        (events_topic, stored_events, "event_id"),
        (facts_topic, stored_facts, "fact_id"),
    ):
        want: dict[str, tuple[int, int]] = {}
        topic_values = [v for t_, _, v, _ in sent if t_ == topic]
        for value, (partition, offset) in zip(topic_values, acks[topic], strict=True):
            for ident in _items_ids(value, field):
                want[ident] = (partition, offset)
        assert {row[0]: (row[1], row[2]) for row in stored} == want
        assert len(stored) == len(want) == 30
    assert metrics.value("shinrai_sink_rows_written_total", {"table": "interactions"}) == 30
    assert metrics.value("shinrai_sink_rows_written_total", {"table": "sla_facts"}) == 30


def _items_ids(value: bytes, field: str) -> list[str]:
    return [orjson.loads(item or b"{}")[field] for item in items(value)]
