"""OffsetTracker: the commit point is the oldest unfinished offset, per partition."""

from __future__ import annotations

import pytest

from sinks.offsets import OffsetTracker

pytestmark = pytest.mark.unit


def test_out_of_order_completion_commits_only_the_contiguous_prefix() -> None:
    tracker: OffsetTracker[int] = OffsetTracker()
    for offset in (10, 11, 12, 13):
        tracker.begin(0, offset)
    tracker.done(0, 12)
    tracker.done(0, 13)
    assert tracker.take_commits() == {}  # 10 and 11 still running: nothing may be committed
    tracker.done(0, 10)
    assert tracker.take_commits() == {0: 11}
    tracker.done(0, 11)
    assert tracker.take_commits() == {0: 14}  # 11 unblocks 12 and 13 that finished earlier
    assert tracker.outstanding() == 0
    assert tracker.take_commits() == {}  # reported once


def test_partitions_are_independent() -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    tracker.begin("a", 0)
    tracker.begin("b", 5)
    tracker.begin("b", 6)
    tracker.done("b", 6)
    tracker.done("a", 0)
    assert tracker.take_commits() == {"a": 1}
    assert tracker.outstanding("b") == 2


def test_a_reread_offset_is_tracked_once() -> None:
    tracker: OffsetTracker[int] = OffsetTracker()
    tracker.begin(0, 3)
    tracker.begin(0, 3)  # the same record read again (seek back after a failed flush)
    tracker.done(0, 3)
    assert tracker.take_commits() == {0: 4}
    assert tracker.outstanding() == 0


def test_failed_commits_are_given_back_and_newer_positions_win() -> None:
    tracker: OffsetTracker[int] = OffsetTracker()
    tracker.begin(0, 0)
    tracker.done(0, 0)
    failed = tracker.take_commits()
    tracker.begin(0, 1)
    tracker.done(0, 1)
    tracker.retry(failed)
    assert tracker.take_commits() == {0: 2}
    tracker.retry({0: 2})
    assert tracker.take_commits() == {0: 2}


def test_forgotten_partition_ignores_late_completions() -> None:
    tracker: OffsetTracker[int] = OffsetTracker()
    tracker.begin(1, 7)
    tracker.forget(1)
    tracker.done(1, 7)  # a delivery that finished after its partition was revoked
    assert tracker.take_commits() == {}
