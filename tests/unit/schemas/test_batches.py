"""Batch records: splicing, splitting, envelope errors and the partition of a key."""

from __future__ import annotations

import orjson
import pytest
from kafka.partitioner.default import murmur2

from schemas.base import decode, encode
from schemas.batches import (
    EVENT_BATCH,
    FACT_BATCH,
    MAX_BATCH_ITEMS,
    BatchInvalid,
    EventBatch,
    join,
    partition_for,
    split,
)
from schemas.events import InteractionEvent
from tests.builders import interaction

pytestmark = pytest.mark.unit


def test_join_then_split_gives_back_each_item_as_its_single_record() -> None:
    events = [interaction(f"2026-12-0{d}T09:00:00+09:00", client=f"c{d}") for d in range(1, 6)]
    raw = join(EVENT_BATCH, [encode(e) for e in events])
    found = split(raw)
    assert found is not None
    kind, items = found
    assert kind == EVENT_BATCH
    assert [decode(InteractionEvent, item) for item in items] == events
    # the spliced record is the published model's wire form
    assert EventBatch.model_validate_json(raw).events == events


def test_single_records_and_other_json_are_not_batches() -> None:
    assert split(encode(interaction("2026-12-01T09:00:00Z"))) is None
    assert split(b"not json") is None
    assert split(b"") is None
    assert split(None) is None
    # the word in a subject does not make a record a batch
    assert split(orjson.dumps({"type": "interaction", "subject": '"event_batch"'})) is None


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"schema_version": 2, "type": "event_batch", "events": [{}]}, "schema_version"),
        ({"schema_version": 1, "type": "event_batch", "events": []}, "events"),
        ({"schema_version": 1, "type": "event_batch", "events": {}}, "events"),
        ({"schema_version": 1, "type": "fact_batch"}, "facts"),
        ({"schema_version": 1, "type": "event_batch", "events": [{}], "x": 1}, "x"),
    ],
)
def test_a_wrong_envelope_names_the_field(value: dict[str, object], field: str) -> None:
    with pytest.raises(BatchInvalid, match=f"^{field}: "):
        split(orjson.dumps(value))


def test_join_refuses_empty_and_oversized_batches() -> None:
    with pytest.raises(ValueError, match="at least one"):
        join(FACT_BATCH, [])
    with pytest.raises(ValueError, match="at most"):
        join(FACT_BATCH, [b"{}"] * (MAX_BATCH_ITEMS + 1))


@pytest.mark.parametrize("partitions", [1, 3, 6, 12])
def test_partition_for_is_kafkas_default_partitioner(partitions: int) -> None:
    for key in [b"", b"a", b"ab", b"abc", b"acme", b"_unknown", "顧客-42".encode(), b"x" * 37]:
        expected = (murmur2(key) & 0x7FFFFFFF) % partitions
        assert partition_for(key, partitions) == expected
