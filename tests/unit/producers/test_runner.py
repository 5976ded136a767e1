"""The producing runner: keys, duplicates, rejects to file and DLQ, summary counts."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest

from producers.kafka_producer import (
    UNKNOWN_CLIENT_KEY,
    DeadLetterWriter,
    compression_type,
    producer_config,
)
from producers.parsers.base import Parsed, Rejected
from producers.produce import RunSummary, run
from producers.rejects import RejectsFile
from schemas.base import decode
from schemas.deadletter import ORIGIN, REASON, SOURCE
from schemas.events import InteractionEvent
from shinrai.errors import KafkaUnavailable
from shinrai.settings import KafkaSettings
from tests.builders import numbered_event

pytestmark = pytest.mark.unit


class MemorySink:
    """An in-memory RecordSink: what a Kafka producer would have been asked to send."""

    def __init__(self, fail_flush: bool = False) -> None:
        self.records: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]] = []
        self.flushed = 0
        self.fail_flush = fail_flush

    def send(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        self.records.append((topic, key, value, headers or []))

    def flush(self) -> None:
        self.flushed += 1
        if self.fail_flush:
            raise KafkaUnavailable("2 record(s) failed")


def _results() -> list[Parsed | Rejected]:
    return [
        Parsed(numbered_event(0, "acme"), "f:1"),
        Rejected("Date: unparseable 'Foo 99'", "f:2", b"raw two"),
        Parsed(numbered_event(1, None), "f:3"),
        Parsed(numbered_event(0, "acme"), "f:4"),  # the same event id again
        Rejected("Date: unparseable 'Foo 99'", "f:5", b"raw five"),
        Parsed(numbered_event(2, "globex"), "f:6"),
    ]


def test_run_produces_keyed_events_once_and_routes_rejects(tmp_path: Path) -> None:
    sink = MemorySink()
    rejects = RejectsFile(tmp_path / "rejects.jsonl")
    summary = run(
        _results(),
        source="produce:test",
        topic="t",
        sink=sink,
        dead_letters=DeadLetterWriter(sink, "dlq"),
        rejects=rejects,
    )
    rejects.close()

    events = [
        (key, decode(InteractionEvent, value or b""))
        for t, key, value, _ in sink.records
        if t == "t"
    ]
    assert [key for key, _ in events] == [b"acme", UNKNOWN_CLIENT_KEY, b"globex"]
    assert [e.event_id for _, e in events] == [
        numbered_event(n, c).event_id for n, c in ((0, "acme"), (1, None), (2, "globex"))
    ]
    dead = [(value, dict(headers)) for t, _, value, headers in sink.records if t == "dlq"]
    assert [value for value, _ in dead] == [b"raw two", b"raw five"]
    assert dead[0][1][REASON] == b"Date: unparseable 'Foo 99'"
    assert dead[0][1][SOURCE] == b"produce:test"
    assert dead[1][1][ORIGIN] == b"f:5"
    assert sink.flushed == 1

    assert summary.to_json() == {
        "source": "produce:test",
        "dry_run": False,
        "read": 6,
        "produced": 3,
        "duplicates": 1,
        "distinct_event_ids": 3,
        "unknown_client": 1,
        "written": 0,
        "rejected": 2,
        "by_kind": {"message": 2, "call": 1},
        "by_direction": {"inbound": 2, "outbound": 1},
        "by_kind_direction": {"message/inbound": 2, "call/outbound": 1},
        "rejected_by_reason": {"Date: unparseable 'Foo 99'": 2},
    }
    lines = [orjson.loads(line) for line in (tmp_path / "rejects.jsonl").read_bytes().splitlines()]
    assert [base64.b64decode(line["raw_base64"]) for line in lines] == [b"raw two", b"raw five"]
    assert lines[0]["origin"] == "f:2"


def test_dry_run_sends_nothing_and_counts_the_same() -> None:
    summary = run(_results(), source="produce:test", topic="t", sink=None)
    assert summary.dry_run
    assert summary.produced == 3
    assert summary.rejected == 2


def test_failed_delivery_propagates_with_partial_summary() -> None:
    sink = MemorySink(fail_flush=True)
    summary = RunSummary(source="produce:test", dry_run=False)
    with pytest.raises(KafkaUnavailable):
        run(_results(), source="produce:test", topic="t", sink=sink, summary=summary)
    assert summary.produced == 3  # the caller can still say how far it got


def test_clean_run_leaves_an_empty_rejects_file(tmp_path: Path) -> None:
    rejects = RejectsFile(tmp_path / "r.jsonl")
    run(
        [Parsed(numbered_event(0, "acme"), "f:1")],
        source="s",
        topic="t",
        sink=None,
        rejects=rejects,
    )
    rejects.close()
    rejects.close()  # idempotent: does not truncate or reopen
    assert (tmp_path / "r.jsonl").read_bytes() == b""


def test_producer_config_is_durable_and_keeps_the_secret_out_of_settings_repr() -> None:
    kafka = KafkaSettings(
        bootstrap="b1:9093, b2:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="svc",
        sasl_password="hunter2",  # type: ignore[arg-type]
    )
    config = producer_config(kafka)
    assert config["bootstrap_servers"] == ["b1:9093", "b2:9093"]
    assert config["acks"] == "all"
    assert config["enable_idempotence"] is True
    assert config["allow_auto_create_topics"] is False
    assert config["compression_type"] == compression_type() in {"lz4", "zstd", "gzip"}
    assert config["sasl_plain_password"] == "hunter2"
    assert "hunter2" not in repr(kafka)


def test_events_are_produced_in_event_time_order_whatever_the_archive_order() -> None:
    # An mbox is rarely sorted: a partition must still be read in event time.
    shuffled = [numbered_event(n, "acme") for n in (5, 1, 9, 0, 3)]
    tie = numbered_event(3, "acme", event_id="test:acme:3a")  # same instant: event id decides
    sink = MemorySink()
    summary = run(
        [Parsed(e, f"f:{i}") for i, e in enumerate([*shuffled, tie])],
        source="t",
        topic="interactions.v1",
        sink=sink,
    )
    sent = [decode(InteractionEvent, value).event_id for _, _, value, _ in sink.records if value]
    assert sent == [
        "test:acme:0",
        "test:acme:1",
        "test:acme:3",
        "test:acme:3a",
        "test:acme:5",
        "test:acme:9",
    ]
    assert summary.produced == 6
