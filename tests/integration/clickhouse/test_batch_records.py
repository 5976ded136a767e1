"""The ClickHouse runner reads batch records (``fact_batch``, ``event_batch``) as it reads
single records: each item a row at the batch record's Kafka position, a bad item dead-lettered
alone, a wrong envelope dead-lettered whole, a replayed batch written once (chdb)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import orjson
import pytest
from aiokafka import TopicPartition

from schemas.base import encode
from schemas.batches import EVENT_BATCH, FACT_BATCH, join
from schemas.deadletter import DeadLetter
from schemas.facts import Fact, FactKind
from shinrai.metrics import WorkerMetrics
from shinrai.settings import ClickHouseSettings, KafkaSettings
from sinks.clickhouse.rows import Position
from sinks.clickhouse.runner import ClickHouseRunner
from sinks.clickhouse.sink import _SINGLE_HEAD, ClickHouseSink
from tests.integration.clickhouse.seed import directory, scenario
from tests.integration.clickhouse.snapshots import BASE_TABLES, rollups, stop_merges
from tests.integration.clickhouse.test_json_batches import _event, _fact

pytestmark = pytest.mark.integration

SinkFactory = Callable[..., ClickHouseSink]
FACTS_TOPIC, EVENTS_TOPIC = "sla-facts.v1", "interactions.v1"
_BATCH_HEAD = b'{"schema_version":1,"type":"event_batch","events":['
PER_BATCH = 7  # items per batch record


class Record(NamedTuple):
    offset: int
    value: bytes | None


def _runner(sink: ClickHouseSink) -> tuple[ClickHouseRunner, WorkerMetrics, list[DeadLetter]]:
    metrics = WorkerMetrics()
    runner = ClickHouseRunner(
        KafkaSettings(), sink, facts_topic=FACTS_TOPIC, interactions_topic=EVENTS_TOPIC,
        group_id="g", metrics=metrics, executor=None, batch_rows=100,  # type: ignore[arg-type]
    )  # fmt: skip
    letters: list[DeadLetter] = []
    runner_reject = sink.on_reject
    assert runner_reject is not None

    def reject(table: str, letter: DeadLetter) -> None:
        letters.append(letter)
        runner_reject(table, letter)

    sink.on_reject = reject
    return runner, metrics, letters


def _skipped(metrics: WorkerMetrics, reason: str) -> float:
    return metrics.value("shinrai_sink_records_skipped_total", {"reason": reason}) or 0


def _contents(sink: ClickHouseSink) -> dict[str, Any]:
    """Every table as a reader sees it, Kafka offsets left out (a batch record's items share
    one): base tables' raw rows (duplicates show), obligations' latest state, the rollups."""
    client = sink.client
    out: dict[str, Any] = {}
    for table in BASE_TABLES:
        columns = [r[0] for r in client.query(f"DESCRIBE {table}").result_rows]
        keep = ", ".join(f"`{c}`" for c in columns if c != "offset")
        out[table] = sorted(client.query(f"SELECT {keep} FROM {table}").result_rows, key=repr)
    out["obligations"] = client.query(
        "SELECT * EXCEPT (version) FROM obligations FINAL ORDER BY ALL"
    ).result_rows
    out["obligations_owed"] = client.query(
        "SELECT * EXCEPT (version) FROM obligations_owed FINAL ORDER BY ALL"
    ).result_rows
    out.update(rollups(client))
    return out


def _as_batches(records: list[tuple[Any, Position]]) -> list[tuple[Position, bytes]]:
    """The records as batch records of ``PER_BATCH`` items of one partition each, in order,
    at offsets 0, 1, 2, ... per partition (what the processor writes for batch input)."""
    streams: dict[tuple[str, int], list[bytes]] = {}
    for record, pos in records:
        streams.setdefault((pos.topic, pos.partition), []).append(encode(record))
    out: list[tuple[Position, bytes]] = []
    for (topic, partition), values in streams.items():
        kind = FACT_BATCH if topic == FACTS_TOPIC else EVENT_BATCH
        for n, start in enumerate(range(0, len(values), PER_BATCH)):
            out.append(
                (Position(topic, partition, n), join(kind, values[start : start + PER_BATCH]))
            )
    return out


def _feed(runner: ClickHouseRunner, sink: ClickHouseSink, records: list[tuple[Position, bytes]],
          flush_every: int) -> None:  # fmt: skip
    for n, (pos, value) in enumerate(records, 1):
        runner._add(TopicPartition(pos.topic, pos.partition), Record(pos.offset, value))
        if n % flush_every == 0:
            sink.flush()
    sink.flush()


def _scenario_records() -> list[tuple[Any, Position]]:
    data = scenario(seed=41)
    assert any(f.kind == FactKind.RETRACTED for f, _ in data.facts)  # the row path too
    return [*data.facts, *data.events]


def test_batch_records_write_the_rows_single_records_write(sink_factory: SinkFactory) -> None:
    records = _scenario_records()
    single = sink_factory()
    stop_merges(single.client)
    single.upsert_clients(directory(), version=1)
    runner, _, letters = _runner(single)
    _feed(runner, single, [(pos, encode(r)) for r, pos in records], flush_every=61)
    assert letters == []
    want = _contents(single)

    batched = sink_factory()
    stop_merges(batched.client)
    batched.upsert_clients(directory(), version=1)
    runner, _, letters = _runner(batched)
    batches = _as_batches(records)
    assert len(batches) < len(records) / 5
    _feed(runner, batched, batches, flush_every=9)  # many flushes: obligations fold across
    assert letters == []
    assert _contents(batched) == want
    # Each row carries its batch record's offset; the high-water marks are those offsets.
    last = {(p.topic, p.partition): p.offset for p, _ in batches}
    stored = batched.client.query(
        "SELECT topic, partition, max(offset), count() FROM sla_facts GROUP BY ALL"
    ).result_rows
    assert {(t, p): o for t, p, o, _ in stored} == {
        k: v for k, v in last.items() if k[0] == FACTS_TOPIC
    }
    assert sum(n for *_, n in stored) == sum(1 for r, _ in records if isinstance(r, Fact))


@pytest.mark.parametrize("table", ["sla_facts", "interactions"])
def test_a_bad_item_is_dead_lettered_alone_and_the_rest_written(
    sink_factory: SinkFactory, table: str
) -> None:
    sink = sink_factory()
    runner, metrics, letters = _runner(sink)
    if table == "sla_facts":
        topic, kind, make, bad, key = (
            FACTS_TOPIC,
            FACT_BATCH,
            _fact,
            _fact(92, kind="exploded"),
            "fact_id",
        )
        reason = "invalid_fact"
    else:
        topic, kind, make, bad, key = (
            EVENTS_TOPIC,
            EVENT_BATCH,
            _event,
            _event(92, direction="sideways"),
            "event_id",
        )
        reason = "not_an_interaction"
    tp = TopicPartition(topic, 0)
    runner._add(tp, Record(6, make(1)))  # a single record before it
    items = [make(10), make(11), bad, make(13), make(14)]
    runner._add(tp, Record(7, join(kind, items)))
    assert runner._unflushed[table] == 6
    assert sink.flush() == 5
    rows = sink.client.query(f"SELECT {key}, offset FROM {table} ORDER BY {key}").result_rows
    p = key[0]
    assert rows == [(f"{p}1", 6), (f"{p}10", 7), (f"{p}11", 7), (f"{p}13", 7), (f"{p}14", 7)]
    assert [(letter.raw, letter.origin) for letter in letters] == [(bad, f"{topic}/0@7#2")]
    assert _skipped(metrics, reason) == 1
    assert runner._unflushed[table] == 5  # the rows the sink_rows metric will count
    # The record's offset is the high-water mark: read again, all of it is skipped.
    runner._add(tp, Record(7, join(kind, items)))
    assert sink.buffered == 0
    assert _skipped(metrics, "already_written") == 1


@pytest.mark.parametrize(
    ("topic", "value", "field"),
    [
        (FACTS_TOPIC, b'{"schema_version":2,"type":"fact_batch","facts":[{}]}', "schema_version"),
        (FACTS_TOPIC, b'{"schema_version":1,"type":"fact_batch","facts":[]}', "facts"),
        (FACTS_TOPIC, b'{"schema_version":1,"type":"fact_batch","facts":[],"x":1}', "x"),
        (EVENTS_TOPIC, join(FACT_BATCH, [_fact(1)]), "type"),  # facts on the events topic
        (FACTS_TOPIC, join(EVENT_BATCH, [_event(1)]), "type"),
    ],
)
def test_a_wrong_envelope_dead_letters_the_whole_record(
    sink_factory: SinkFactory, topic: str, value: bytes, field: str
) -> None:
    sink = sink_factory()
    runner, metrics, letters = _runner(sink)
    table = "sla_facts" if topic == FACTS_TOPIC else "interactions"
    tp = TopicPartition(topic, 3)
    runner._add(tp, Record(4, value))
    runner._add(tp, Record(5, _fact(2) if topic == FACTS_TOPIC else _event(2)))
    assert [(letter.raw, letter.origin) for letter in letters] == [(value, f"{topic}/3@4")]
    assert letters[0].reason.startswith(f"{field}: ")
    assert runner._unflushed[table] == 1  # the good record after it, counted once
    assert _skipped(metrics, "already_written") == 0
    assert sink.flush() == 1
    assert sink.client.query(f"SELECT offset FROM {table}").result_rows == [(5,)]


@pytest.mark.parametrize(
    ("topic", "value"),
    [
        (FACTS_TOPIC, _fact(1, type="fact_batch", facts=[orjson.loads(_fact(2))])),
        (EVENTS_TOPIC, _event(1, events=[orjson.loads(_event(2))], note="event_batch")),
    ],
)
def test_a_single_record_that_also_names_a_batch_is_dead_lettered_alone(
    sink_factory: SinkFactory, topic: str, value: bytes
) -> None:
    """A value in the single record's canonical form is buffered without the batch scan
    (``_SINGLE_HEAD``); batch fields tacked onto it are unknown fields of a single record, so
    it is dead-lettered at flush and the record after it is written."""
    table = "sla_facts" if topic == FACTS_TOPIC else "interactions"
    assert value.startswith(_SINGLE_HEAD[table])
    assert b'_batch"' in value
    sink = sink_factory()
    runner, _, letters = _runner(sink)
    tp = TopicPartition(topic, 3)
    runner._add(tp, Record(4, value))
    runner._add(tp, Record(5, _fact(3) if topic == FACTS_TOPIC else _event(3)))
    assert sink.flush() == 1
    assert [(letter.raw, letter.origin) for letter in letters] == [(value, f"{topic}/3@4")]
    assert letters[0].reason.split(": ")[0] in {"type", "facts", "events", "note"}
    assert sink.client.query(f"SELECT offset FROM {table}").result_rows == [(5,)]


def test_a_replayed_batch_is_written_once(
    sink_factory: SinkFactory, ch_settings: Callable[..., ClickHouseSettings]
) -> None:
    """The same batch records again: past the high-water marks (a flush re-sent) ClickHouse
    drops them on the dedup token; after a restart the marks skip them."""
    records = _scenario_records()
    batches = _as_batches(records)
    settings = ch_settings()
    first = sink_factory(settings)
    stop_merges(first.client)
    runner, _, letters = _runner(first)
    _feed(runner, first, batches, flush_every=len(batches))
    want = _contents(first)
    counts = {t: first.client.query(f"SELECT count() FROM {t}").result_rows for t in BASE_TABLES}
    first._high_water.clear()  # a re-sent flush: same records, same offsets, same token
    _feed(runner, first, batches, flush_every=len(batches))
    assert _contents(first) == want
    assert {
        t: first.client.query(f"SELECT count() FROM {t}").result_rows for t in BASE_TABLES
    } == counts
    first.close()
    again = sink_factory(settings)  # a restart replaying from the last committed offset
    runner, metrics, letters = _runner(again)
    _feed(runner, again, batches, flush_every=len(batches))
    assert again.skipped == len(batches)
    assert _skipped(metrics, "already_written") == len(batches)
    assert _contents(again) == want
    assert letters == []


def _reordered(value: bytes) -> bytes:
    """The same JSON object with its first key moved last (a valid value ``_cut`` misses)."""
    data = orjson.loads(value)
    first = next(iter(data))
    return orjson.dumps({**{k: v for k, v in data.items() if k != first}, first: data[first]})


def test_items_the_byte_cut_gets_wrong_are_split_exactly(sink_factory: SinkFactory) -> None:
    """The runner cuts batch records at the bytes between items; a record where that cut is
    wrong (an item not starting with schema_version; a nested list of objects holding that
    key) is refused by ClickHouse and split exactly: valid items written, a bad one alone
    dead-lettered, a record that is not JSON dead-lettered whole."""
    sink = sink_factory()
    runner, _, letters = _runner(sink)
    tp = TopicPartition(EVENTS_TOPIC, 2)
    nested = orjson.dumps(
        {**orjson.loads(_event(3)), "x": [{"schema_version": 1}, {"schema_version": 2}]}
    )
    broken = _BATCH_HEAD + b'{"schema_version":1,"event_id":]}'
    runner._add(tp, Record(1, join(EVENT_BATCH, [_event(1), _reordered(_event(2)), _event(4)])))
    runner._add(tp, Record(2, join(EVENT_BATCH, [_event(5), nested, _event(6)])))
    runner._add(tp, Record(3, broken))
    sink.flush()
    rows = sink.client.query("SELECT event_id, offset FROM interactions ORDER BY event_id")
    assert rows.result_rows == [("e1", 1), ("e2", 1), ("e4", 1), ("e5", 2), ("e6", 2)]
    assert [(letter.raw, letter.origin) for letter in letters] == [
        (nested, f"{EVENTS_TOPIC}/2@2#1"),
        (broken, f"{EVENTS_TOPIC}/2@3"),
    ]
    assert letters[0].reason.startswith("x: ")
    assert sink.buffered == 0


def test_facts_the_byte_cut_gets_wrong_are_split_exactly(sink_factory: SinkFactory) -> None:
    sink = sink_factory()
    runner, _, letters = _runner(sink)
    tp = TopicPartition(FACTS_TOPIC, 0)
    runner._add(tp, Record(0, join(FACT_BATCH, [_fact(1), _reordered(_fact(2)), _fact(3)])))
    sink.flush()
    rows = sink.client.query("SELECT fact_id, offset FROM sla_facts ORDER BY fact_id")
    assert rows.result_rows == [("f1", 0), ("f2", 0), ("f3", 0)]
    assert letters == []
