"""Batch records: many events (or facts) of ONE partition in one Kafka record.

A single-event record costs every consumer the same per-record machinery (Faust hands each
record through its conductor, queue and acking: ~150-200 µs of CPU before any work). Producers
that hold many events at once (``shinrai produce``, a first sync, the gateway under load) write
batch records instead; a single-event record stays valid and is what third parties send.

Wire contract (JSON Schema: ``schemas/json/event-batch.v1.schema.json`` and
``fact-batch.v1.schema.json``)::

    {"schema_version": 1, "type": "event_batch", "events": [<event>, <event>, ...]}
    {"schema_version": 1, "type": "fact_batch",  "facts":  [<fact>,  <fact>,  ...]}

* Every item is exactly what a single-event record of it would hold (an InteractionEvent or
  ClientPolicyChanged; a Fact), in the order single records of them would have been on the
  partition. A batch holds items of one partition only: the partition the default partitioner
  (murmur2 of the item's key, as the Java client, kafka-python, aiokafka and Faust) gives each
  item's key (``client_id``; ``_unknown`` for an event without a client). The batch record is
  produced to that partition explicitly; its own key is the key of its first item.
* At most ``MAX_BATCH_ITEMS`` items, and no larger than the topic's ``max.message.bytes``.
* A consumer splits the record (``split``) and treats each item as the single record it stands
  for: one invalid item is dead-lettered on its own (its bytes, its index in the origin), the
  rest of the batch is processed. A record whose envelope is wrong is dead-lettered whole.

``join`` builds a batch from items already encoded (no re-encoding: the bytes are spliced).
"""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from pydantic import Field

from schemas.base import Frozen
from schemas.events import ClientPolicyChanged, InteractionEvent
from schemas.facts import Fact

__all__ = [
    "EVENT_BATCH",
    "FACT_BATCH",
    "MAX_BATCH_ITEMS",
    "BatchInvalid",
    "EventBatch",
    "FactBatch",
    "join",
    "looks_like_batch",
    "partition_for",
    "split",
]

EVENT_BATCH = "event_batch"
FACT_BATCH = "fact_batch"
MAX_BATCH_ITEMS = 10_000
"""Most items one batch record may hold (the record's byte size is bounded by the topic too)."""

_ITEMS = {EVENT_BATCH: "events", FACT_BATCH: "facts"}


class EventBatch(Frozen):
    """Events of one partition in one record (the JSON Schema's model; consumers use ``split``)."""

    schema_version: Literal[1] = 1
    type: Literal["event_batch"] = "event_batch"
    events: list[Annotated[InteractionEvent | ClientPolicyChanged, Field(discriminator="type")]] = (
        Field(min_length=1, max_length=MAX_BATCH_ITEMS)
    )


class FactBatch(Frozen):
    """Facts of one partition in one record (what the processor writes for a batch input)."""

    schema_version: Literal[1] = 1
    type: Literal["fact_batch"] = "fact_batch"
    facts: list[Fact] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)


class BatchInvalid(ValueError):
    """The record says it is a batch but its envelope is wrong (the reason names the field)."""


def looks_like_batch(raw: bytes | None) -> bool:
    """Cheap pre-check before parsing: False means ``raw`` is certainly not a batch record."""
    return bool(raw) and (b'"event_batch"' in raw or b'"fact_batch"' in raw)  # type: ignore[operator]


def join(kind: str, items: list[bytes]) -> bytes:
    """A batch record of ``kind`` (``EVENT_BATCH`` or ``FACT_BATCH``) from encoded items."""
    field = _ITEMS[kind]
    if not items:
        raise ValueError("a batch needs at least one item")
    if len(items) > MAX_BATCH_ITEMS:
        raise ValueError(f"a batch holds at most {MAX_BATCH_ITEMS} items, got {len(items)}")
    head = b'{"schema_version":1,"type":"' + kind.encode() + b'","' + field.encode() + b'":['
    return head + b",".join(items) + b"]}"


def split(raw: bytes | None) -> tuple[str, list[bytes]] | None:
    """``(kind, items)`` of a batch record, each item as the bytes of its own single record;
    None when ``raw`` is not a batch record (a single record, or not JSON: its consumer's
    ordinary decoding reports that). Raises ``BatchInvalid`` for a wrong envelope."""
    if not looks_like_batch(raw):
        return None
    try:
        data = orjson.loads(raw)  # type: ignore[arg-type]
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    kind = data.get("type")
    if kind not in _ITEMS:
        return None
    field = _ITEMS[kind]
    version = data.get("schema_version")
    if version != 1:
        raise BatchInvalid(f"schema_version: {kind} version {version!r} is not supported (1)")
    extra = sorted(set(data) - {"schema_version", "type", field})
    if extra:
        raise BatchInvalid(f"{extra[0]}: unknown field of a {kind}")
    items = data.get(field)
    if not isinstance(items, list) or not items:
        raise BatchInvalid(f"{field}: a {kind} needs a non-empty list of {field}")
    if len(items) > MAX_BATCH_ITEMS:
        raise BatchInvalid(f"{field}: {len(items)} items, at most {MAX_BATCH_ITEMS}")
    return kind, [orjson.dumps(item) for item in items]


def _murmur2(data: bytes) -> int:
    """Kafka's murmur2 (the Java client's ``Utils.murmur2``), as a signed 32-bit int."""
    length = len(data)
    seed = 0x9747B28C
    m = 0x5BD1E995
    r = 24
    h = (seed ^ length) & 0xFFFFFFFF
    length4 = length // 4
    for i in range(length4):
        i4 = i * 4
        k = data[i4] | (data[i4 + 1] << 8) | (data[i4 + 2] << 16) | (data[i4 + 3] << 24)
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    extra = length % 4
    index = length4 * 4
    if extra >= 3:
        h ^= data[index + 2] << 16
    if extra >= 2:
        h ^= data[index + 1] << 8
    if extra >= 1:
        h ^= data[index]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - 0x100000000 if h & 0x80000000 else h


_PARTITION_CACHE: dict[tuple[bytes, int], int] = {}


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` among ``partitions``."""
    found = _PARTITION_CACHE.get((key, partitions))
    if found is None:
        if len(_PARTITION_CACHE) > 100_000:
            _PARTITION_CACHE.clear()
        found = _PARTITION_CACHE[(key, partitions)] = (_murmur2(key) & 0x7FFFFFFF) % partitions
    return found
