"""The producing runner with a record limit: an event over it is a reject (with its id and the
limit), its repeat a duplicate, and every other event is still sent and written to --out."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from producers.jsonl import EventsFile
from producers.kafka_producer import DeadLetterWriter, RecordTooLarge, record_size
from producers.parsers.base import Parsed
from producers.produce import run
from producers.rejects import RejectsFile
from schemas.base import decode, encode
from schemas.deadletter import REASON
from schemas.events import InteractionEvent
from tests.builders import numbered_event
from tests.unit.producers.test_runner import MemorySink

pytestmark = pytest.mark.unit


def test_an_event_over_the_limit_is_rejected_and_the_rest_is_sent(tmp_path: Path) -> None:
    small = [numbered_event(n, "acme") for n in (0, 3)]  # e-mails, like the big one
    big = numbered_event(1, "acme", subject="x" * 1000)
    limit = max(record_size(b"acme", encode(e)) for e in small)
    assert record_size(b"acme", encode(big)) > limit
    sink = MemorySink()
    rejects = RejectsFile(tmp_path / "rejects.jsonl")
    out = EventsFile(tmp_path / "out.jsonl")
    results = [Parsed(small[0], "f:1"), Parsed(big, "f:2"), Parsed(big, "f:3")]
    summary = run(
        [*results, Parsed(small[1], "f:4")],
        source="produce:test",
        topic="t",
        sink=sink,
        dead_letters=DeadLetterWriter(sink, "dlq"),
        rejects=rejects,
        out=out,
        max_record_bytes=limit,
    )
    rejects.close()
    out.close()

    sent = [decode(InteractionEvent, v or b"") for t, _, v, _ in sink.records if t == "t"]
    assert sent == small
    assert (summary.produced, summary.rejected, summary.duplicates) == (2, 1, 1)
    assert summary.by_kind_direction == {"message/inbound": 2}  # the rejected one is not counted
    [(value, headers)] = [(v, dict(h)) for t, _, v, h in sink.records if t == "dlq"]
    assert value == encode(big)
    reason = headers[REASON].decode()
    assert reason.startswith(f"event {big.event_id} is ")
    assert f"over the {limit:,}-byte limit of topic t" in reason
    [line] = [orjson.loads(x) for x in (tmp_path / "rejects.jsonl").read_bytes().splitlines()]
    assert (line["reason"], line["origin"]) == (reason, "f:2")
    written = (tmp_path / "out.jsonl").read_bytes().splitlines()
    assert [decode(InteractionEvent, x) for x in written] == small


def test_without_a_limit_nothing_is_checked() -> None:
    sink = MemorySink()
    big = numbered_event(1, "acme", subject="x" * 1000)
    summary = run([Parsed(big, "f:1")], source="s", topic="t", sink=sink)
    assert (summary.produced, summary.rejected) == (1, 0)


def test_the_error_names_the_event_the_size_and_the_limit() -> None:
    error = RecordTooLarge("interactions.v1", 2_051_262, 1_048_576, label="event e-1")
    assert str(error) == (
        "event e-1 is 2,051,262 bytes encoded, over the 1,048,576-byte limit of topic "
        "interactions.v1 (its max.message.bytes, or SHINRAI_KAFKA__MAX_MESSAGE_BYTES)"
    )
