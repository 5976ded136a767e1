"""Per-partition watermarks: the wall clock when live, event time while a backlog is read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streams.watermark import PartitionWatermarks

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
GAP = timedelta(seconds=10)


def test_unread_partitions_and_caught_up_ones_follow_the_wall_clock() -> None:
    marks = PartitionWatermarks(GAP)
    assert marks.watermark(0, NOW) == NOW  # nothing read (a restart): deadlines fire at once
    marks.observe(0, NOW - timedelta(days=3))
    marks.observe(0, NOW - timedelta(days=3))
    marks.read_up_to(0, offset=9, highwater=10)  # the last record read is the log end
    assert not marks.catching_up(0, NOW)
    assert marks.watermark(0, NOW) == NOW
    assert marks.watermark(None, NOW) == NOW


def test_a_backlog_is_read_in_event_time_until_the_log_end() -> None:
    marks = PartitionWatermarks(GAP)
    assert marks.observe(1, NOW - timedelta(days=3)) is None  # one event: no event time yet
    assert marks.observe(1, NOW - timedelta(days=4)) == NOW - timedelta(days=4)
    assert marks.observe(1, NOW - timedelta(days=3)) == NOW - timedelta(days=3)
    assert marks.observe(1, NOW - timedelta(days=5)) == NOW - timedelta(days=3)  # never back
    marks.read_up_to(1, offset=99, highwater=1000)
    assert marks.catching_up(1, NOW)
    assert marks.partitions_catching_up(NOW) == 1
    assert marks.watermark(1, NOW) == NOW - timedelta(days=3)
    assert marks.watermark(0, NOW) == NOW  # other partitions are not held back
    marks.read_up_to(1, offset=999, highwater=1000)
    assert not marks.catching_up(1, NOW)
    assert marks.partitions_catching_up(NOW) == 0
    assert marks.watermark(1, NOW) == NOW


def test_a_few_queued_records_of_fresh_events_are_live_not_a_backlog() -> None:
    marks = PartitionWatermarks(GAP)
    marks.observe(3, NOW - timedelta(seconds=3))
    marks.observe(3, NOW - timedelta(seconds=2))  # a busy moment: 2 s behind, records queued
    marks.read_up_to(3, offset=10, highwater=40)
    assert not marks.catching_up(3, NOW)
    assert marks.watermark(3, NOW) == NOW
    later = NOW + timedelta(seconds=30)  # nothing newer read while the clock ran on: a backlog
    assert marks.catching_up(3, later)
    assert marks.watermark(3, later) == NOW - timedelta(seconds=3)


def test_a_backlog_that_starts_with_policy_changes_has_no_watermark_yet() -> None:
    marks = PartitionWatermarks(GAP)
    marks.read_up_to(4, offset=0, highwater=500)  # only a ClientPolicyChanged read: no time
    assert marks.catching_up(4, NOW)
    assert marks.watermark(4, NOW) is None  # not "now": that would turn the backlog late
    marks.observe(4, NOW - timedelta(days=2))
    marks.observe(4, NOW - timedelta(days=2))
    assert marks.watermark(4, NOW) == NOW - timedelta(days=2)


def test_an_unknown_log_end_and_a_reassignment_count_as_live() -> None:
    marks = PartitionWatermarks(GAP)
    marks.observe(2, NOW - timedelta(hours=1))
    marks.observe(2, NOW - timedelta(hours=1))
    marks.read_up_to(2, offset=5, highwater=None)
    assert marks.watermark(2, NOW) == NOW
    marks.read_up_to(2, offset=5, highwater=50)
    assert marks.watermark(2, NOW) == NOW - timedelta(hours=1)
    marks.clear()
    marks.assignment_known()
    assert marks.event_time(2) is None
    assert marks.watermark(2, NOW) == NOW


def test_one_event_dated_far_ahead_does_not_make_a_backlog_look_live() -> None:
    marks = PartitionWatermarks(GAP)
    marks.read_up_to(0, offset=0, highwater=5000)
    marks.observe(0, NOW - timedelta(days=20))
    marks.observe(0, NOW + timedelta(days=3650))  # read early in the backlog: an outlier
    assert marks.catching_up(0, NOW)
    assert marks.watermark(0, NOW) == NOW - timedelta(days=20)
    for day in (19, 18, 17):
        assert marks.observe(0, NOW - timedelta(days=day)) == NOW - timedelta(days=day)
    assert marks.watermark(0, NOW) == NOW - timedelta(days=17)


def test_after_assignment_a_partition_is_behind_until_what_was_queued_is_read() -> None:
    marks = PartitionWatermarks(GAP)
    marks.assigned(0, position=100, log_end=400)  # 300 records queued while no worker ran
    assert marks.catching_up(0, NOW)
    assert marks.watermark(0, NOW) is None  # nothing read: no advance, no ticks
    marks.observe(0, NOW - timedelta(minutes=30))
    marks.observe(0, NOW - timedelta(minutes=29))
    # Kafka's fetch reports the log end as the last record of that fetch: still behind.
    marks.read_up_to(0, offset=149, highwater=150)
    assert marks.catching_up(0, NOW)
    assert marks.watermark(0, NOW) == NOW - timedelta(minutes=30)  # the second largest
    marks.read_up_to(0, offset=399, highwater=400)
    assert not marks.catching_up(0, NOW)
    marks.read_up_to(0, offset=400, highwater=401)
    assert not marks.catching_up(0, NOW)
    # Nothing queued, or offsets unknown: live at once (a missed deadline fires at once).
    marks.assigned(1, position=50, log_end=50)
    marks.assigned(2, position=None, log_end=80)
    assert marks.watermark(1, NOW) == marks.watermark(2, NOW) == NOW
    assert marks.partitions_catching_up(NOW) == 0


def test_after_a_reassignment_nothing_is_live_until_the_assignment_is_known() -> None:
    marks = PartitionWatermarks(GAP)
    assert marks.watermark(0, NOW) == NOW
    marks.clear()  # a rebalance: a tick read now must not move anyone to the clock
    assert marks.catching_up(0, NOW)
    assert marks.watermark(0, NOW) is None
    marks.assigned(0, position=10, log_end=10)
    marks.assigned(1, position=5, log_end=9)
    marks.assignment_known()
    assert marks.watermark(0, NOW) == NOW
    assert marks.catching_up(1, NOW)
