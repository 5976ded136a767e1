"""The ClickHouse runner's per-record step (decode + buffer), without Kafka or ClickHouse."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
import pytest
from aiokafka import TopicPartition

from schemas.base import encode
from schemas.facts import Fact, FactKind
from shinrai.metrics import WorkerMetrics
from shinrai.settings import ClickHouseSettings, KafkaSettings
from sinks.clickhouse.runner import ClickHouseRunner
from sinks.clickhouse.sink import FACTS, INTERACTIONS, ClickHouseSink

pytestmark = pytest.mark.unit

T = datetime(2025, 3, 3, 9, tzinfo=UTC)
FACTS_TOPIC, EVENTS_TOPIC = "sla-facts.v1", "interactions.v1"


class Record(NamedTuple):
    offset: int
    value: bytes | None


def make() -> tuple[ClickHouseRunner, ClickHouseSink, WorkerMetrics]:
    sink = ClickHouseSink(ClickHouseSettings(url="chdb:///nonexistent"))  # no I/O until setup
    metrics = WorkerMetrics()
    runner = ClickHouseRunner(
        KafkaSettings(), sink, facts_topic=FACTS_TOPIC, interactions_topic=EVENTS_TOPIC,
        group_id="g", metrics=metrics, executor=None, batch_rows=100,  # type: ignore[arg-type]
    )  # fmt: skip
    return runner, sink, metrics


def fact_json(**change: Any) -> bytes:
    fact = Fact(fact_id="f1", kind=FactKind.SILENCE, client_id="c1", at=T, policy_id="p",
                policy_version=1)  # fmt: skip
    return orjson.dumps({**orjson.loads(encode(fact)), **change})


def skipped(metrics: WorkerMetrics, reason: str) -> float:
    return metrics.value("shinrai_sink_records_skipped_total", {"reason": reason}) or 0


def test_values_are_buffered_as_read_with_their_positions() -> None:
    """The per-record step only buffers the value bytes (ClickHouse decodes them at flush:
    tests/integration/clickhouse/test_json_batches.py); tombstones are counted and dropped."""
    runner, sink, metrics = make()
    facts, events = TopicPartition(FACTS_TOPIC, 0), TopicPartition(EVENTS_TOPIC, 2)
    runner._add(facts, Record(7, fact_json()))
    runner._add(facts, Record(8, b"not json"))  # judged at flush, not here
    runner._add(events, Record(3, b"{}"))
    runner._add(events, Record(4, None))
    assert sink._raw[FACTS].values == [fact_json(), b"not json"]
    assert [p.offset for p in sink._raw[FACTS].positions] == [7, 8]
    assert sink._raw[INTERACTIONS].values == [b"{}"]
    assert sink._raw[INTERACTIONS].positions[0] == (EVENTS_TOPIC, 2, 3)
    assert sink.buffered == 3
    assert runner._unflushed[FACTS] == 2
    assert skipped(metrics, "tombstone") == 1
