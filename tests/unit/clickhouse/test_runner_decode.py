"""The ClickHouse runner's per-record step (decode + buffer), without Kafka or ClickHouse."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
import pytest
import structlog
from aiokafka import TopicPartition
from structlog.testing import capture_logs

from schemas.base import encode
from schemas.events import Channel, Direction, InteractionEvent, Kind
from schemas.facts import Fact, FactKind
from shinrai.metrics import WorkerMetrics
from shinrai.settings import ClickHouseSettings, KafkaSettings
from sinks.clickhouse import runner as runner_module
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


def test_facts_become_rows_and_refused_ones_go_to_the_model_or_are_skipped_with_a_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runner, sink, metrics = make()
    tp = TopicPartition(FACTS_TOPIC, 0)
    runner._add(tp, Record(0, fact_json()))
    # A full-width client id: the row checks refuse it (not in NFKC form), the model accepts
    # and normalises it -> written as the model stores it.
    runner._add(tp, Record(1, fact_json(fact_id="f2", client_id="\uff43\uff11")))
    with capture_logs() as logs:
        # A logger made inside the capture: the module's own may already be cached by an
        # earlier test's ``shinrai.logging.configure`` (cache_logger_on_first_use).
        monkeypatch.setattr(runner_module, "log", structlog.get_logger("sinks.clickhouse.runner"))
        runner._add(tp, Record(2, fact_json(kind="exploded")))
        runner._add(tp, Record(3, b"not json"))
    runner._add(tp, Record(4, None))
    buf = sink._buffers[FACTS]
    assert [item["fact_id"] for item in buf.items] == ["f1", "f2"]
    assert [item["client_id"] for item in buf.items] == ["c1", "c1"]
    assert buf.iso == 1  # f1 as a decoded row, f2 from the model
    assert [p.offset for p in buf.positions if p] == [0, 1]
    assert skipped(metrics, "invalid_fact") == 2
    assert skipped(metrics, "tombstone") == 1
    errors = [e for e in logs if e["event"] == "invalid_fact_skipped"]
    assert [(e["field"], e["position"]) for e in errors] == [
        ("kind", "Position(topic='sla-facts.v1', partition=0, offset=2)"),
        ("<root>", "Position(topic='sla-facts.v1', partition=0, offset=3)"),
    ]
    assert "Input should be" in errors[0]["reason"]


def test_interactions_skip_policy_changes_and_invalid_input() -> None:
    runner, sink, metrics = make()
    tp = TopicPartition(EVENTS_TOPIC, 1)
    event = InteractionEvent(event_id="e1", channel=Channel.EMAIL, kind=Kind.MESSAGE,
                             direction=Direction.INBOUND, occurred_at=T, recorded_at=T,
                             client_id="c1")  # fmt: skip
    good = orjson.loads(encode(event))
    runner._add(tp, Record(0, encode(event)))
    policy = {"type": "policy_changed", "event_id": "p1", "client_id": "c1"}
    runner._add(tp, Record(1, orjson.dumps(policy)))
    runner._add(tp, Record(2, b'{"event_id": "x", "direction": "sideways"'))
    bad_call = {**good, "event_id": "e2", "kind": "call"}  # a call on email
    runner._add(tp, Record(3, orjson.dumps(bad_call)))
    buf = sink._buffers[INTERACTIONS]
    assert [item["event_id"] for item in buf.items] == ["e1"]
    assert skipped(metrics, "not_an_interaction") == 3
    assert runner._unflushed[INTERACTIONS] == 1
