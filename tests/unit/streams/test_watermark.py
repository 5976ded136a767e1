"""Per-partition watermarks: the wall clock when caught up, event time while a backlog is read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streams.watermark import PartitionWatermarks

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_unread_partitions_and_caught_up_ones_follow_the_wall_clock() -> None:
    marks = PartitionWatermarks()
    assert marks.watermark(0, NOW) == NOW  # nothing read (a restart): deadlines fire at once
    marks.observe(0, NOW - timedelta(days=3))
    marks.read_up_to(0, offset=9, highwater=10)  # the last record read is the log end
    assert not marks.catching_up(0)
    assert marks.watermark(0, NOW) == NOW
    assert marks.watermark(None, NOW) == NOW


def test_a_backlog_is_read_in_event_time_until_the_log_end() -> None:
    marks = PartitionWatermarks()
    assert marks.observe(1, NOW - timedelta(days=3)) == NOW - timedelta(days=3)
    assert marks.observe(1, NOW - timedelta(days=4)) == NOW - timedelta(days=3)  # a max
    marks.read_up_to(1, offset=99, highwater=1000)
    assert marks.catching_up(1)
    assert marks.partitions_catching_up == 1
    assert marks.watermark(1, NOW) == NOW - timedelta(days=3)
    assert marks.watermark(0, NOW) == NOW  # other partitions are not held back
    marks.observe(1, NOW + timedelta(minutes=5))  # a clock ahead of ours: never past now
    assert marks.watermark(1, NOW) == NOW
    marks.read_up_to(1, offset=999, highwater=1000)
    assert not marks.catching_up(1)
    assert marks.partitions_catching_up == 0


def test_an_unknown_log_end_and_a_reassignment_count_as_caught_up() -> None:
    marks = PartitionWatermarks()
    marks.observe(2, NOW - timedelta(hours=1))
    marks.read_up_to(2, offset=5, highwater=None)
    assert marks.watermark(2, NOW) == NOW
    marks.read_up_to(2, offset=5, highwater=50)
    assert marks.watermark(2, NOW) == NOW - timedelta(hours=1)
    marks.clear()
    assert marks.event_time(2) is None
    assert marks.watermark(2, NOW) == NOW
