"""Publish the client directory to the compacted topic ``directory.v1`` and read it back.

Records come from ``schemas.directory_records.directory_records`` (client id → Client JSON, ``_staff``,
``policy:<id>``, ``calendar:<id>``). A client removed from the file is deleted on the topic only
when asked (``prune``): a tombstone (key with a null value) is what compaction understands, and
deleting clients by accident would silently stop their SLAs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from producers.kafka_producer import RecordSink
from schemas.directory import ClientDirectory
from schemas.directory_records import directory_records
from shinrai.errors import KafkaUnavailable
from shinrai.kafka_check import check_connection
from shinrai.kafka_options import kafka_python_options
from shinrai.settings import KafkaSettings

TopicRecord = tuple[bytes, bytes | None]


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What a publish wrote: records sent, tombstones sent, keys left in place."""

    published: int
    deleted: tuple[str, ...]
    stale: tuple[str, ...]  # on the topic, not in the file, kept because prune was off


def live_keys(records: Sequence[TopicRecord]) -> set[bytes]:
    """Keys whose latest record is not a tombstone."""
    latest: dict[bytes, bytes | None] = {}
    for key, value in records:
        latest[key] = value
    return {key for key, value in latest.items() if value is not None}


def publish(
    sink: RecordSink,
    directory: ClientDirectory,
    topic: str,
    *,
    existing: Sequence[TopicRecord] = (),
    prune: bool = False,
) -> PublishResult:
    """Send every directory record (and tombstones for removed keys when ``prune``); flush."""
    records = directory_records(directory)
    for key, value in records:
        sink.send(topic, key=key, value=value)
    removed = sorted(live_keys(existing) - {key for key, _ in records})
    if prune:
        for key in removed:
            # kafka-python sends value=None as a null value: a tombstone.
            sink.send(topic, key=key, value=None)
    sink.flush()
    names = tuple(k.decode("utf-8", "replace") for k in removed)
    return PublishResult(
        published=len(records),
        deleted=names if prune else (),
        stale=() if prune else names,
    )


def read_all(
    kafka: KafkaSettings, topic: str, *, timeout_s: float | None = None
) -> list[TopicRecord]:
    """Every record of ``topic`` from the beginning to the current end, in offset order.

    Reads to the end offsets taken at the start, so it terminates on a live topic too.
    """
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    budget = timeout_s if timeout_s is not None else kafka.request_timeout_s * 3
    check_connection(kafka)
    try:
        consumer = KafkaConsumer(
            **kafka_python_options(kafka),
            group_id=None,
            enable_auto_commit=False,
            client_id="shinrai-directory-reader",
        )
    except KafkaError as exc:
        raise KafkaUnavailable(f"cannot connect to Kafka at {kafka.bootstrap}: {exc}") from exc
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise KafkaUnavailable(f"topic {topic} does not exist (see `shinrai topics create`)")
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        ends = consumer.end_offsets(assigned)
        records: list[TopicRecord] = []
        deadline = time.monotonic() + budget
        while any(consumer.position(tp) < ends[tp] for tp in assigned):
            if time.monotonic() > deadline:
                raise KafkaUnavailable(f"reading {topic} did not reach its end in {budget:.0f}s")
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend((m.key, m.value) for m in batch if m.key is not None)
        return records
    except KafkaError as exc:
        raise KafkaUnavailable(f"cannot read {topic}: {exc}") from exc
    finally:
        consumer.close()
