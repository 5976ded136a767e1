"""Kafka values handed to ClickHouse as JSONEachRow batches (``add_*_json``): the same tables as
the model path, bad records dead-lettered with their bytes without losing the batch, dedup and
high-water marks as before, and every column value exactly what the JSON said."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
import pytest
import structlog
from aiokafka import TopicPartition
from structlog.testing import capture_logs

from schemas.base import encode
from schemas.deadletter import DeadLetter
from schemas.events import Channel, Direction, InteractionEvent, Kind
from schemas.facts import Fact, FactKind
from shinrai.metrics import WorkerMetrics
from shinrai.settings import ClickHouseSettings, KafkaSettings
from sinks.clickhouse import json_batches, records
from sinks.clickhouse import runner as runner_module
from sinks.clickhouse.rows import Position
from sinks.clickhouse.runner import ClickHouseRunner
from sinks.clickhouse.sink import ClickHouseSink
from tests.integration.clickhouse.seed import Scenario, directory, scenario
from tests.integration.clickhouse.snapshots import snapshot, stop_merges

pytestmark = pytest.mark.integration

SinkFactory = Callable[..., ClickHouseSink]
FACTS_TOPIC, EVENTS_TOPIC = "sla-facts.v1", "interactions.v1"
T = datetime(2025, 3, 3, 9, tzinfo=UTC)


def _add_json(sink: ClickHouseSink, records: list[tuple[Any, Position]]) -> None:
    for record, pos in records:
        if isinstance(record, Fact):
            assert sink.add_fact_json(encode(record), pos)
        else:
            assert sink.add_interaction_json(encode(record), pos)


def _reference(sink_factory: SinkFactory, data: Scenario) -> dict[str, Any]:
    sink = sink_factory()
    stop_merges(sink.client)
    sink.upsert_clients(directory(), version=1)
    for record, pos in [*data.facts, *data.events]:
        sink.add(record, pos)
    sink.flush()
    return snapshot(sink.client)


def _letters(sink: ClickHouseSink) -> list[tuple[str, DeadLetter]]:
    letters: list[tuple[str, DeadLetter]] = []
    sink.on_reject = lambda table, letter: letters.append((table, letter))
    return letters


def test_json_batches_write_what_models_write(sink_factory: SinkFactory) -> None:
    """Tables, rollups and obligations (folded across many batches) as the model path leaves
    them; a batch with a retraction takes the row path inside the same sink."""
    data = scenario(seed=31)
    assert any(f.kind == FactKind.RETRACTED for f, _ in data.facts)
    want = _reference(sink_factory, data)
    sink = sink_factory()
    letters = _letters(sink)
    stop_merges(sink.client)
    sink.upsert_clients(directory(), version=1)
    records = [*data.facts, *data.events]
    for start in range(0, len(records), 61):
        _add_json(sink, records[start : start + 61])
        sink.flush()
    assert letters == []
    assert snapshot(sink.client) == want


def _event(i: int, **change: Any) -> bytes:
    event = InteractionEvent(event_id=f"e{i}", channel=Channel.EMAIL, kind=Kind.MESSAGE,
                             direction=Direction.INBOUND, occurred_at=T, recorded_at=T,
                             client_id="c1")  # fmt: skip
    return orjson.dumps({**orjson.loads(encode(event)), **change})


def _fact(i: int, **change: Any) -> bytes:
    fact = Fact(fact_id=f"f{i}", kind=FactKind.SILENCE, client_id="c1", at=T, policy_id="p",
                policy_version=1)  # fmt: skip
    return orjson.dumps({**orjson.loads(encode(fact)), **change})


@pytest.mark.parametrize(
    ("table", "bad", "field"),
    [
        ("interactions", b'{"event_id": "x", "direction": "sideways"', "<root>"),
        ("interactions", _event(90, direction="sideways"), "direction"),
        ("interactions", _event(91, kind="call"), "<root>"),  # a call on email (model rule)
        ("interactions", _event(92, surprise=1), "surprise"),
        ("interactions", _event(93, occurred_at="2025-02-30T00:00:00Z"), "occurred_at"),
        ("sla_facts", _fact(90, kind="exploded"), "kind"),
        ("sla_facts", _fact(91, at="2025-03-03 09:00"), "at"),
        ("sla_facts", _fact(92, policy_version=None), "policy_version"),
        ("sla_facts", b"\xff\xfe not utf-8", "<root>"),
    ],
)
def test_one_malformed_record_is_dead_lettered_and_the_rest_stored(
    sink_factory: SinkFactory, table: str, bad: bytes, field: str
) -> None:
    sink = sink_factory()
    letters = _letters(sink)
    make, add = (
        (_event, sink.add_interaction_json) if table == "interactions" else
        (_fact, sink.add_fact_json)
    )  # fmt: skip
    topic = EVENTS_TOPIC if table == "interactions" else FACTS_TOPIC
    for offset in range(5):
        value = bad if offset == 2 else make(offset)
        assert add(value, Position(topic, 0, offset))
    assert sink.flush() == 4
    key = "event_id" if table == "interactions" else "fact_id"
    stored = sink.client.query(f"SELECT {key}, offset FROM {table} ORDER BY offset").result_rows
    prefix = key[0]
    assert stored == [(f"{prefix}0", 0), (f"{prefix}1", 1), (f"{prefix}3", 3), (f"{prefix}4", 4)]
    assert [(t, letter.raw, letter.origin) for t, letter in letters] == [
        (table, bad, f"{topic}/0@2")
    ]
    assert letters[0][1].reason.startswith(f"{field}: ")
    assert sink.rejected == 1
    # Nothing left behind: the next batch starts empty and the high-water mark moved past it.
    assert sink.buffered == 0
    assert not add(make(9), Position(topic, 0, 4))


def test_redelivered_batch_changes_no_counts(
    sink_factory: SinkFactory, ch_settings: Callable[..., ClickHouseSettings]
) -> None:
    """The same offsets again: skipped by the high-water marks after a restart, and, past the
    marks (a re-sent flush), dropped by ClickHouse on the dedup token."""
    data = scenario(seed=33)
    settings = ch_settings()
    records = [*data.facts, *data.events]
    first = sink_factory(settings)
    stop_merges(first.client)
    _add_json(first, records)
    first.flush()
    want = snapshot(first.client)
    # A re-sent flush (e.g. its acknowledgement was lost): same batch, same token.
    first._high_water.clear()
    _add_json(first, records)
    first.flush()
    assert snapshot(first.client) == want
    first.close()
    again = sink_factory(settings)  # a restart replaying from the last committed offset
    for record, pos in records:
        add = again.add_fact_json if isinstance(record, Fact) else again.add_interaction_json
        assert not add(encode(record), pos)
    assert again.flush() == 0
    assert again.skipped == len(records)
    assert snapshot(again.client) == want


def _utc_text(value: str | None) -> str | None:
    """An RFC 3339 instant as UTC text with microseconds, computed without ClickHouse."""
    if value is None:
        return None
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def test_column_values_round_trip_exactly(sink_factory: SinkFactory) -> None:
    """What ClickHouse returns, as text, against the JSON values decoded here: instants with
    offsets and microseconds in UTC, nulls and absent fields as NULL, flags sorted and
    de-duplicated, LowCardinality strings, floats to the last bit."""
    sink = sink_factory()
    values = [
        {"event_id": "e-日本-1", "channel": "phone", "kind": "call", "direction": "inbound",
         "occurred_at": "2025-03-04T18:15:30.123456+09:00",
         "recorded_at": "2025-03-04T09:15:30.000001Z", "client_id": "acme",
         "thread_key": None, "counterpart": "+81312345678", "staff": "佐藤",
         "flags": ["held", "auto_reply", "held"], "call_outcome": "answered",
         "duration_seconds": 12345.678901, "wait_seconds": 0.1, "source": "zoom",
         "subject": "件名 — \"quoted\" \\ back'slash", "schema_version": 1},
        {"event_id": "e-2", "channel": "email", "kind": "message", "direction": "outbound",
         "occurred_at": "2024-12-31T23:59:59-05:30", "recorded_at": "2025-01-01T05:29:59.5Z",
         "client_id": None, "schema_version": 2, "message_key": "0" * 32,
         "parent_keys": ["a" * 32]},
    ]  # fmt: skip
    for offset, value in enumerate(values):
        assert sink.add_interaction_json(orjson.dumps(value), Position(EVENTS_TOPIC, 3, offset))
    assert sink.flush() == 2
    columns = ("event_id", "channel", "kind", "direction", "occurred_at", "recorded_at",
               "client_id", "thread_key", "counterpart", "staff", "flags", "call_outcome",
               "duration_seconds", "wait_seconds", "source", "subject", "schema_version")  # fmt: skip
    got = sink.client.query(
        "SELECT event_id, channel, kind, direction, "
        "formatDateTime(occurred_at, '%Y-%m-%d %H:%i:%S.%f', 'UTC'), "
        "formatDateTime(recorded_at, '%Y-%m-%d %H:%i:%S.%f', 'UTC'), client_id, thread_key, "
        "counterpart, staff, flags, call_outcome, duration_seconds, "
        "wait_seconds, source, subject, schema_version, "
        "toTypeName(channel), toTypeName(occurred_at), toTypeName(thread_key) "
        "FROM interactions ORDER BY offset"
    ).result_rows
    for value, row in zip(values, got, strict=True):
        want = {
            **{c: value.get(c) for c in columns},
            "occurred_at": _utc_text(str(value["occurred_at"])),
            "recorded_at": _utc_text(str(value["recorded_at"])),
            "client_id": value.get("client_id") or "",
            "flags": sorted(set(value.get("flags") or [])),  # type: ignore[arg-type]
            "source": value.get("source", "unknown"),
        }
        assert dict(zip(columns, row[: len(columns)], strict=True)) == want
        assert row[len(columns) :] == (
            "LowCardinality(String)", "DateTime64(6, 'UTC')", "Nullable(String)"
        )  # fmt: skip


def test_fact_column_values_round_trip_exactly(sink_factory: SinkFactory) -> None:
    sink = sink_factory()
    value = {"fact_id": "f-1", "kind": "fulfilled", "client_id": "c1",
             "at": "2025-03-04T09:15:30.999999+01:00", "policy_id": "gold", "policy_version": 7,
             "obligation_id": "o-1", "obligation_kind": "first_response", "thread_key": "t",
             "channel": "email", "opened_at": "2025-03-04T00:00:00Z", "deadline": None,
             "fulfilled_at": "2025-03-04T08:15:30.999999Z", "fulfilled_by_channel": "phone",
             "outcome": "met", "business_seconds": 1.5e-7, "answered_within_target": False,
             "reason": "理由", "schema_version": 1}  # fmt: skip
    assert sink.add_fact_json(orjson.dumps(value), Position(FACTS_TOPIC, 0, 0))
    assert sink.flush() == 1
    got = sink.client.query(
        "SELECT fact_id, kind, client_id, formatDateTime(at, '%Y-%m-%d %H:%i:%S.%f', 'UTC'), "
        "policy_version, obligation_kind, "
        "formatDateTime(opened_at, '%Y-%m-%d %H:%i:%S.%f', 'UTC'), deadline, "
        "formatDateTime(fulfilled_at, '%Y-%m-%d %H:%i:%S.%f', 'UTC'), fulfilled_by_channel, "
        "business_seconds, answered_within_target, reason, warning_fraction, "
        "retracted_kind, topic, partition, offset FROM sla_facts"
    ).result_rows
    assert got == [
        ("f-1", "fulfilled", "c1", _utc_text(str(value["at"])), 7, "first_response",
         _utc_text(str(value["opened_at"])), None, _utc_text(str(value["fulfilled_at"])),
         "phone", 1.5e-7, False, "理由", None, "", FACTS_TOPIC, 0, 0)
    ]  # fmt: skip
    status = sink.client.query("SELECT status, status_fact_id FROM obligations FINAL").result_rows
    assert status == [("met", "f-1")]


class Record(NamedTuple):
    offset: int
    value: bytes | None


def _runner(sink: ClickHouseSink) -> tuple[ClickHouseRunner, WorkerMetrics]:
    metrics = WorkerMetrics()
    runner = ClickHouseRunner(
        KafkaSettings(), sink, facts_topic=FACTS_TOPIC, interactions_topic=EVENTS_TOPIC,
        group_id="g", metrics=metrics, executor=None, batch_rows=100,  # type: ignore[arg-type]
    )  # fmt: skip
    return runner, metrics


def _skipped(metrics: WorkerMetrics, reason: str) -> float:
    return metrics.value("shinrai_sink_records_skipped_total", {"reason": reason}) or 0


def test_runner_facts_refused_ones_go_to_the_model_or_are_skipped_with_a_reason(
    sink_factory: SinkFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(Was a unit test of the per-record decode; the decode now happens at flush.)"""
    sink = sink_factory()
    runner, metrics = _runner(sink)
    tp = TopicPartition(FACTS_TOPIC, 0)
    runner._add(tp, Record(0, _fact(1)))
    # A full-width client id: ClickHouse's checks refuse it (not in NFKC form), the model
    # accepts and normalises it -> written as the model stores it.
    runner._add(tp, Record(1, _fact(2, client_id="\uff43\uff11")))
    runner._add(tp, Record(2, _fact(3, kind="exploded")))
    runner._add(tp, Record(3, b"not json"))
    runner._add(tp, Record(4, None))
    with capture_logs() as logs:
        monkeypatch.setattr(runner_module, "log", structlog.get_logger("sinks.clickhouse.runner"))
        sink.flush()
    rows = sink.client.query("SELECT fact_id, client_id, offset FROM sla_facts ORDER BY offset")
    assert rows.result_rows == [("f1", "c1", 0), ("f2", "c1", 1)]
    assert _skipped(metrics, "invalid_fact") == 2
    assert _skipped(metrics, "tombstone") == 1
    errors = [e for e in logs if e["event"] == "invalid_fact_skipped"]
    assert [(e["field"], e["position"]) for e in errors] == [
        ("kind", f"{FACTS_TOPIC}/0@2"),
        ("<root>", f"{FACTS_TOPIC}/0@3"),
    ]
    assert "Input should be" in errors[0]["reason"]
    assert errors[1]["raw"] == b"not json"


def test_runner_interactions_skip_policy_changes_and_invalid_input(
    sink_factory: SinkFactory,
) -> None:
    sink = sink_factory()
    runner, metrics = _runner(sink)
    tp = TopicPartition(EVENTS_TOPIC, 1)
    runner._add(tp, Record(0, _event(1)))
    policy = {"type": "policy_changed", "event_id": "p1", "client_id": "c1"}
    runner._add(tp, Record(1, orjson.dumps(policy)))
    runner._add(tp, Record(2, b'{"event_id": "x", "direction": "sideways"'))
    runner._add(tp, Record(3, _event(2, kind="call")))  # a call on email
    assert runner._unflushed["interactions"] == 4
    sink.flush()
    rows = sink.client.query("SELECT event_id FROM interactions").result_rows
    assert rows == [("e1",)]
    assert _skipped(metrics, "not_an_interaction") == 3
    assert runner._unflushed["interactions"] == 1


# Identifier and instant values on both sides of the printable-ASCII pattern that decides the
# common case in ClickHouse's checks: values outside it but valid (non-ASCII in NFKC, a null)
# must still be taken, and every way of breaking it must still be refused, as the row checks do.
# (They pin the rule for any cheaper form of the checks: bench/sink.py --ceiling.)
_GATE_CASES = [
    ("client_id", "café-東京", True),
    ("client_id", "ｃ１", False),  # full-width: not in NFKC form
    ("client_id", "c\u00a0", False),  # NBSP: NFKC makes it a trailing space
    ("client_id", "\u202ec1", False),  # bidi override
    ("thread_key", "a\nb", False),  # a newline would add a line to the joined text
    ("thread_key", "a\tb", False),
    ("thread_key", "a\x7f", False),
    ("staff", " s1", False),
    ("staff", "s1 ", False),
    ("staff", "", False),
    ("staff", None, True),
    ("counterpart", "+81 3 1234 5678", True),
    ("event_id", "e\u00e9", True),
    ("occurred_at", "2025-03-03T09:00:00.123456+09:00", True),
    ("occurred_at", "2025-03-03T09:00:00", False),
    ("occurred_at", "2025-03-03T09:00:00Z\n2025-03-03T09:00:00Z", False),
    ("recorded_at", "2025-03-03 09:00:00Z", False),
]


@pytest.mark.parametrize(("field", "value", "valid"), _GATE_CASES)
def test_clickhouse_checks_take_exactly_what_the_row_checks_take(
    sink_factory: SinkFactory, field: str, value: str | None, valid: bool
) -> None:
    raw = _event(1, **{field: value})
    try:
        records.interaction_row(raw)
        row_checks_take = True
    except records.RecordInvalid:
        row_checks_take = False
    assert row_checks_take is valid
    sink = sink_factory()
    # Among valid rows, as in a live batch: the batch is refused as a whole or not at all.
    for offset, item in enumerate([_event(0), raw, _event(2)]):
        assert sink.add_interaction_json(item, Position(EVENTS_TOPIC, 0, offset))
    parsed = sink._parse_json("interactions", json_batches.INTERACTIONS)
    assert (parsed is not None) is valid
    if parsed is not None and not field.endswith("_at"):
        assert parsed.column(field).to_pylist()[1] == value


@pytest.mark.parametrize(
    ("field", "value", "valid"),
    [
        ("fact_id", "f\u00e9", True),
        ("fact_id", "f\u200b", False),  # zero-width space
        ("policy_id", "p\n", False),
        ("obligation_id", None, True),
        ("at", "2025-03-03T09:00:00-05:00", True),
        ("at", "2025-03-03T09:00:00+0900", False),
    ],
)
def test_clickhouse_fact_checks_take_exactly_what_the_row_checks_take(
    sink_factory: SinkFactory, field: str, value: str | None, valid: bool
) -> None:
    raw = _fact(1, **{field: value})
    try:
        records.fact_row(raw)
        row_checks_take = True
    except records.RecordInvalid:
        row_checks_take = False
    assert row_checks_take is valid
    sink = sink_factory()
    for offset, item in enumerate([_fact(0), raw, _fact(2)]):
        assert sink.add_fact_json(item, Position(FACTS_TOPIC, 0, offset))
    parsed = sink._parse_json("sla_facts", json_batches.FACTS)
    assert (parsed is not None) is valid
