"""``streams.recovery.restore_changelog`` against the real broker: a changelog (overwrites, a
tombstone, several partitions) lands in RocksDB databases Faust's own store reads, with the
offset Faust resumes from, and a second restore reads only what is newer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from shinrai.settings import KafkaSettings
from streams.recovery import FAUST_OFFSET_KEY, restore_changelog, table_partition_path

pytestmark = pytest.mark.integration

PARTITIONS = 3


async def _produce(
    kafka: KafkaSettings, topic: str, records: Sequence[tuple[int, bytes, bytes | None]]
) -> list[tuple[int, int]]:
    """(partition, key, value or None) in order; returns the offset of each record."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap.split(","), acks="all")
    await producer.start()
    try:
        offsets: list[tuple[int, int]] = []
        for partition, key, value in records:
            meta = await producer.send_and_wait(topic, key=key, value=value, partition=partition)
            offsets.append((partition, meta.offset))
        return offsets
    finally:
        await producer.stop()


def _faust_read(path: Path) -> tuple[dict[bytes, bytes], int | None]:
    """The database as Faust's RocksDB store opens it: (visible items, stored offset)."""
    from faust.stores.rocksdb import RocksDBOptions, Store

    assert Store.offset_key == FAUST_OFFSET_KEY  # Faust's own key, not a guess
    db = RocksDBOptions(use_rocksdict=True).open(path)
    try:
        items = {k: v for k, v in db.items() if k != FAUST_OFFSET_KEY}
        offset = db.get(FAUST_OFFSET_KEY)
        return items, None if offset is None else int(offset)
    finally:
        db.close()


async def test_restore_writes_latest_values_and_faust_offsets_then_only_what_is_newer(
    kafka_settings: KafkaSettings, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    topic = topic_factory("restore-changelog", partitions=PARTITIONS)
    first = [
        (0, b"a", b"a1"),
        (0, b"b", b"b1"),
        (0, b"a", b"a2"),  # overwrite: the latest value wins
        (1, b"c", b"c1"),
        (1, b"c", None),  # tombstone: deleted
        (1, b"d", b"d1"),
    ]  # partition 2 stays empty
    await _produce(kafka_settings, topic, first)

    result = await restore_changelog(kafka_settings, topic, tmp_path, "sla-state", PARTITIONS)
    assert result.partitions == 2
    assert result.records == len(first)
    assert result.skipped == {2: -1}
    assert _faust_read(table_partition_path(tmp_path, "sla-state", 0)) == (
        {b"a": b"a2", b"b": b"b1"},
        2,
    )
    assert _faust_read(table_partition_path(tmp_path, "sla-state", 1)) == ({b"d": b"d1"}, 2)

    second = [(1, b"d", b"d2"), (2, b"e", b"e1")]
    await _produce(kafka_settings, topic, second)
    again = await restore_changelog(kafka_settings, topic, tmp_path, "sla-state", PARTITIONS)
    assert again.records == len(second)  # partition 0 was up to date: nothing read again
    assert again.skipped == {0: 2}
    assert _faust_read(table_partition_path(tmp_path, "sla-state", 1)) == ({b"d": b"d2"}, 3)
    assert _faust_read(table_partition_path(tmp_path, "sla-state", 2)) == ({b"e": b"e1"}, 0)


async def test_restore_of_a_missing_changelog_does_nothing(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    result = await restore_changelog(
        kafka_settings, "no-such-changelog-topic-x7", tmp_path / "tables", "sla-state", 6
    )
    assert result.records == 0
    assert result.partitions == 0
    assert not (tmp_path / "tables").exists()
