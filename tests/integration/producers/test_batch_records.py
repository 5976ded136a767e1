"""Batch records written by the producers, read back from the real broker.

``shinrai produce`` and the Kafka producer's ``EventWriter`` group events per partition into
``event_batch`` records (``schemas.batches``): each record holds the events of ONE partition
(kafka-python's own partitioner of each event's key), in the order they were sent, at most
``SHINRAI_KAFKA__BATCH_EVENTS`` of them and under the topic's record limit. With 1 the records
are the single-event records of before, byte for byte.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic

from producers.kafka_producer import (
    BATCH_MARGIN_BYTES,
    KafkaRecordProducer,
    event_key,
    record_size,
)
from schemas.base import decode, encode
from schemas.batches import EVENT_BATCH, split
from schemas.deadletter import REASON
from schemas.events import InteractionEvent
from shinrai.cli import main
from shinrai.errors import KafkaUnavailable
from shinrai.settings import KafkaSettings
from tests.builders import jsonl, numbered_event
from tests.integration.producers.conftest import Record, kafka_partition
from tests.integration.producers.test_oversized_events import big_event

pytestmark = pytest.mark.integration

CLIENTS = ("acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne")
PARTITIONS = 4


def _events(count: int) -> list[InteractionEvent]:
    """``count`` events over seven clients and no client, in event-time order."""
    clients = [*CLIENTS, None]
    return [numbered_event(n, clients[n % len(clients)]) for n in range(count)]


def _produce(broker: str, path: Path, topic: str, dlq: str, batch: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        main,
        [
            *("produce", str(path), "--format", "jsonl", "--topic", topic, "--dlq-topic", dlq),
            *("--json", "--no-progress"),
        ],
        env={"SHINRAI_KAFKA__BOOTSTRAP": broker, "SHINRAI_KAFKA__BATCH_EVENTS": batch},
    )
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = orjson.loads(result.stdout)
    return summary


def _expected_per_partition(
    events: list[InteractionEvent], partitions: int
) -> dict[int, list[bytes]]:
    """The encoded events each partition must hold, in the order they were given."""
    expected: dict[int, list[bytes]] = {}
    for event in events:
        expected.setdefault(kafka_partition(event_key(event), partitions), []).append(encode(event))
    return expected


def _check_batches(records: list[Record], most: int) -> dict[int, list[bytes]]:
    """Every record a valid batch of one partition (or a single event), keyed by its first
    event, at most ``most`` events; returns each partition's events in log order."""
    got: dict[int, list[bytes]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        batch = split(record.value)
        if batch is None:  # a group of one: the event's ordinary record
            items = [record.value or b""]
        else:
            assert batch[0] == EVENT_BATCH
            items = batch[1]
            assert 2 <= len(items) <= most
        keys = [event_key(decode(InteractionEvent, item)) for item in items]
        assert record.key == keys[0]
        assert {kafka_partition(key, PARTITIONS) for key in keys} == {record.partition}
        got.setdefault(record.partition, []).extend(items)
    return got


@pytest.fixture
def topics(make_topic: Callable[..., str]) -> tuple[str, str]:
    return make_topic("test-batch", partitions=PARTITIONS), make_topic("test-batch-dlq")


def test_produce_writes_batches_of_n_events_per_partition_in_order(
    tmp_path: Path,
    broker: str,
    topics: tuple[str, str],
    read_topic: Callable[..., list[Record]],
) -> None:
    events = _events(203)
    path = tmp_path / "events.jsonl"
    # Given out of event-time order: the run sends (and batches) them in event time.
    path.write_bytes(jsonl(reversed(events)))
    topic, dlq = topics

    summary = _produce(broker, path, topic, dlq, "7")
    assert (summary["read"], summary["produced"], summary["rejected"]) == (203, 203, 0)

    records = read_topic(topic, len(events))
    got = _check_batches(records, most=7)
    assert got == _expected_per_partition(events, PARTITIONS)
    # Batches really were formed: full ones of 7, and far fewer records than events.
    sizes = [len(split(r.value)[1]) for r in records if split(r.value) is not None]  # type: ignore[index]
    assert sizes.count(7) >= 25
    assert len(records) <= 203 // 7 + PARTITIONS


def test_produce_at_the_default_sends_one_batch_record_per_partition(
    tmp_path: Path,
    broker: str,
    topics: tuple[str, str],
    read_topic: Callable[..., list[Record]],
) -> None:
    events = _events(400)
    path = tmp_path / "events.jsonl"
    path.write_bytes(jsonl(events))
    topic, dlq = topics
    result = CliRunner().invoke(
        main,
        [
            *("produce", str(path), "--format", "jsonl", "--topic", topic, "--dlq-topic", dlq),
            *("--json", "--no-progress"),
        ],
        env={"SHINRAI_KAFKA__BOOTSTRAP": broker},  # SHINRAI_KAFKA__BATCH_EVENTS unset: 500
    )
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["produced"] == 400

    records = read_topic(topic, len(events))
    expected = _expected_per_partition(events, PARTITIONS)
    assert _check_batches(records, most=500) == expected
    assert len(records) == len(expected)


def test_batch_size_one_sends_the_single_records_of_before(
    tmp_path: Path,
    broker: str,
    topics: tuple[str, str],
    read_topic: Callable[..., list[Record]],
) -> None:
    events = _events(40)
    path = tmp_path / "events.jsonl"
    path.write_bytes(jsonl(events))
    topic, dlq = topics

    assert _produce(broker, path, topic, dlq, "1")["produced"] == 40

    records = read_topic(topic, len(events))
    assert all(split(r.value) is None for r in records)
    by_value = {encode(e): e for e in events}
    assert sorted(r.value or b"" for r in records) == sorted(by_value)
    for record in records:
        key = event_key(by_value[record.value or b""])
        assert (record.key, record.partition) == (key, kafka_partition(key, PARTITIONS))


@pytest.fixture
def limited_topics(broker: str) -> Iterator[tuple[str, str]]:
    """A 4-partition topic taking at most 20,000 bytes a record, and its DLQ."""
    suffix = uuid.uuid4().hex[:12]
    topic, dlq = f"test-batch-limit-{suffix}", f"test-batch-limit-dlq-{suffix}"
    admin = KafkaAdminClient(bootstrap_servers=broker, request_timeout_ms=15_000)
    admin.create_topics(
        [
            NewTopic(topic, PARTITIONS, 1, topic_configs={"max.message.bytes": "20000"}),
            NewTopic(dlq, 1, 1),
        ]
    )
    try:
        yield topic, dlq
    finally:
        admin.delete_topics([topic, dlq])
        admin.close()


def test_batches_stay_under_the_topics_record_limit_and_a_too_large_event_is_rejected(
    tmp_path: Path,
    broker: str,
    limited_topics: tuple[str, str],
    read_topic: Callable[..., list[Record]],
) -> None:
    topic, dlq = limited_topics
    events = _events(600)  # ~500 bytes each: ~37 kB per partition, over the 20 kB limit
    big = big_event(10_000, 30_000)  # over the limit on its own
    path = tmp_path / "events.jsonl"
    path.write_bytes(jsonl(events[:300]) + encode(big) + b"\n" + jsonl(events[300:]))

    summary = _produce(broker, path, topic, dlq, "500")
    assert (summary["produced"], summary["rejected"]) == (600, 1)

    records = read_topic(topic, len(events))
    assert _check_batches(records, most=500) == _expected_per_partition(events, PARTITIONS)
    for record in records:
        assert record_size(record.key, record.value) <= 20_000 - BATCH_MARGIN_BYTES
    # The byte limit, not N, closed the batches: more than one record on a partition.
    assert len(records) > PARTITIONS
    [letter] = read_topic(dlq, 1)
    assert f"event {big.event_id} is " in letter.headers[REASON].decode()
    assert "over the 20,000-byte limit" in letter.headers[REASON].decode()


def test_a_batch_the_broker_refuses_counts_all_its_events_failed(
    broker: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("test-batch-refused", partitions=PARTITIONS)
    admin = KafkaAdminClient(bootstrap_servers=broker, request_timeout_ms=15_000)
    try:  # the broker checks the compressed record: 1,000 bytes is below any batch of ~100
        admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": "1000"})]
        )
    finally:
        admin.close()
    events = _events(400)
    kafka = KafkaSettings(bootstrap=broker, batch_events=500, request_timeout_s=5)
    with KafkaRecordProducer(kafka, client_id="test-batch-refused") as producer:
        producer._limits[topic] = 1_000_000  # the producer believes the topic takes 1 MB
        writer = producer.event_writer(topic)
        for event in events:
            writer.write(event)
        writer.flush()
        with pytest.raises(KafkaUnavailable) as failed:
            producer.flush()
        report = producer.report
    # Four batch records refused: every one of their 400 events counted failed, none acked.
    assert (report.sent, report.failed, report.acked) == (400, 400, 0)
    assert "400 event(s) failed and 0 unconfirmed of 400 sent" in str(failed.value)
