"""The producers' batch writer: events grouped per partition into ``event_batch`` records.

Pure grouping logic (no broker): the records it hands on are checked with ``schemas.batches``
and kafka-python's own partitioner. What the broker receives is tested in
``tests/integration/producers/test_batch_records.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka.partitioner.default import murmur2

from producers.kafka_producer import (
    BATCH_MARGIN_BYTES,
    EventBatcher,
    EventWriter,
    Record,
    RecordTooLarge,
    event_key,
    record_size,
)
from producers.parsers.base import Parsed
from producers.produce import run
from schemas.base import encode
from schemas.batches import EVENT_BATCH, split
from tests.builders import numbered_event
from tests.unit.cli.test_cli_errors import run_shinrai

pytestmark = pytest.mark.unit

CLIENTS = ("acme", "globex", "initech", "umbrella", "hooli", None)


def kafka_partition(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def _encoded(count: int) -> list[tuple[bytes, bytes]]:
    events = [numbered_event(n, CLIENTS[n % len(CLIENTS)]) for n in range(count)]
    return [(event_key(e), encode(e)) for e in events]


def _batch(records: list[Record], partitions: int, **limits: int) -> list[Record]:
    """Feed ``records``' events through a batcher; return what it emitted."""
    emitted: list[Record] = []
    batcher = EventBatcher(
        "topic",
        partitions=partitions,
        max_events=limits.get("max_events", 500),
        limit=limits.get("limit", 1_000_000),
        emit=emitted.append,
    )
    for record in records:
        batcher.add(record.key or b"", record.value, record.label)
    batcher.flush()
    assert batcher.pending == 0
    return emitted


def _items(record: Record) -> list[bytes]:
    batch = split(record.value)
    if batch is None:
        return [record.value]
    assert batch[0] == EVENT_BATCH
    return batch[1]


@pytest.mark.parametrize("max_events", [2, 3, 7, 500])
def test_each_partition_gets_its_events_in_order_at_most_n_a_record(max_events: int) -> None:
    given = _encoded(100)
    emitted = _batch([Record("topic", k, v) for k, v in given], 4, max_events=max_events)

    expected: dict[int, list[bytes]] = {}
    for key, value in given:
        expected.setdefault(kafka_partition(key, 4), []).append(value)
    got: dict[int, list[bytes]] = {}
    for record in emitted:
        assert record.partition is not None
        items = _items(record)
        assert len(items) <= max_events
        assert record.events == len(items)
        got.setdefault(record.partition, []).extend(items)
        keys = {k for k, v in given if v in items}
        assert {kafka_partition(k, 4) for k in keys} == {record.partition}
        assert record.key == next(k for k, v in given if v == items[0])
    assert got == expected
    # Only the last record of a partition may hold fewer than N events.
    for partition in expected:
        sizes = [r.events for r in emitted if r.partition == partition]
        assert all(size == max_events for size in sizes[:-1])


def test_a_group_of_one_event_is_its_single_record() -> None:
    [(key, value)] = _encoded(1)
    [record] = _batch([Record("topic", key, value, label="event x")], 6)
    assert (record.key, record.value, record.events, record.label) == (key, value, 1, "event x")
    assert record.partition == kafka_partition(key, 6)


def test_a_batch_closes_before_the_byte_limit() -> None:
    given = _encoded(300)
    limit = 12_000
    emitted = _batch([Record("topic", k, v) for k, v in given], 2, limit=limit)
    assert sum(r.events for r in emitted) == 300
    assert all(record_size(r.key, r.value) <= limit - BATCH_MARGIN_BYTES for r in emitted)
    # Full batches are close to the limit: the next event would have crossed it.
    largest = max(record_size(r.key, r.value) for r in emitted)
    assert largest > limit - BATCH_MARGIN_BYTES - 2 * max(len(v) for _k, v in given)


def test_an_event_over_the_record_limit_is_refused_alone() -> None:
    emitted: list[Record] = []
    batcher = EventBatcher("topic", partitions=3, max_events=10, limit=2_000, emit=emitted.append)
    batcher.add(b"acme", b"x" * 100)
    with pytest.raises(RecordTooLarge) as refused:
        batcher.add(b"acme", b"y" * 2_000, "event big")
    assert refused.value.raw == b"y" * 2_000
    assert "event big is " in str(refused.value)
    batcher.flush()
    assert [r.value for r in emitted] == [b"x" * 100]  # the one before still goes


@pytest.mark.parametrize("bad", [{"partitions": 0}, {"max_events": 0}, {"max_events": 10_001}])
def test_a_batcher_needs_partitions_and_a_size_in_range(bad: dict[str, int]) -> None:
    options = {"partitions": 3, "max_events": 10, "limit": 1_000} | bad
    with pytest.raises(ValueError, match=r"partition|max_events"):
        EventBatcher("topic", emit=lambda _r: None, **options)


class BatchSink:
    """What a Kafka producer would have been asked to send, with partitions and event counts."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes | None, bytes | None, int | None, int]] = []
        self.flushed = 0

    def send(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
        events: int = 1,
    ) -> None:
        self.sent.append((key, value, partition, events))

    def flush(self) -> None:
        self.flushed += 1


def test_the_runner_sends_batches_and_counts_events() -> None:
    events = [numbered_event(n, CLIENTS[n % len(CLIENTS)]) for n in range(50)]
    sink = BatchSink()
    writer = EventWriter(sink, "topic", batch_events=4, partitions=3, limit=1_000_000)
    results = [Parsed(e, f"f:{n}") for n, e in enumerate(reversed(events))]
    summary = run(results, source="test", topic="topic", sink=sink, writer=writer)
    assert summary.produced == 50
    assert sink.flushed == 1
    assert sum(events for _k, _v, _p, events in sink.sent) == 50
    items = [i for _k, value, _p, _n in sink.sent for i in _items(Record("t", None, value or b""))]
    assert sorted(items) == sorted(encode(e) for e in events)
    # Singles go out as before (no explicit partition); batches name their partition.
    for _key, value, partition, count in sink.sent:
        assert (partition is None) == (count == 1) == (split(value) is None)


def test_writer_with_batch_size_one_sends_single_records() -> None:
    sink = BatchSink()
    writer = EventWriter(sink, "topic")
    event = numbered_event(1, "acme")
    writer.write(event)
    writer.flush()
    assert sink.sent == [(b"acme", encode(event), None, 1)]


@pytest.mark.parametrize("value", ["0", "10001", "many"])
def test_a_wrong_batch_setting_is_one_line_naming_it(value: str, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(encode(numbered_event(1, "acme")) + b"\n")
    result = run_shinrai(
        ["produce", str(path), "--format", "jsonl"],
        {"SHINRAI_KAFKA__BATCH_EVENTS": value},
        tmp_path,
    )
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: invalid settings: SHINRAI_KAFKA__BATCH_EVENTS: ")
    assert value not in line  # a value may be a secret: never echoed
