"""The deadline index with a fake clock: ordering, replacement, outstanding ticks, rebuild."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streams.deadline_index import DeadlineIndex, DueTick

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_pops_only_what_is_due_in_due_order() -> None:
    index = DeadlineIndex()
    index.update("b", s(20), 1)
    index.update("a", s(10), 0)
    index.update("c", s(30), 2)
    assert index.pop_due(s(5)) == []
    assert index.pop_due(s(20)) == [DueTick("a", s(10), 0), DueTick("b", s(20), 1)]
    assert index.next_instant() == s(10)  # still due (outstanding) until answered


def test_at_most_one_outstanding_tick_per_client_until_answered() -> None:
    index = DeadlineIndex(resend_after=timedelta(seconds=10))
    index.update("a", s(10), 0)
    assert [t.client_id for t in index.pop_due(s(10))] == ["a"]
    assert index.is_outstanding("a")
    assert index.pop_due(s(11)) == []  # sent, not yet answered
    index.update("a", s(40), 0)  # the tick was processed: a new due instant
    assert not index.is_outstanding("a")
    assert index.pop_due(s(39)) == []
    assert index.pop_due(s(40)) == [DueTick("a", s(40), 0)]


def test_an_unanswered_tick_is_resent_after_the_timeout() -> None:
    index = DeadlineIndex(resend_after=timedelta(seconds=10))
    index.update("a", s(10), 0)
    assert len(index.pop_due(s(10))) == 1
    assert index.pop_due(s(19)) == []
    assert index.pop_due(s(20)) == [DueTick("a", s(10), 0)]


def test_same_due_after_processing_is_sent_again() -> None:
    # A tick processed with a clock that had not quite reached the due instant leaves it due.
    index = DeadlineIndex()
    index.update("a", s(10), 0)
    assert len(index.pop_due(s(10))) == 1
    index.update("a", s(10), 0)
    assert index.pop_due(s(10)) == [DueTick("a", s(10), 0)]


def test_update_replaces_and_none_removes() -> None:
    index = DeadlineIndex()
    index.update("a", s(10), 0)
    index.update("a", s(50), 0)  # the obligation was answered: only the later timer is left
    assert index.pop_due(s(20)) == []
    assert index.due_of("a") == s(50)
    index.update("a", None)
    assert len(index) == 0
    assert index.pop_due(s(100)) == []
    assert index.next_instant() is None


def test_partition_is_kept_when_an_update_does_not_know_it() -> None:
    index = DeadlineIndex()
    index.update("a", s(10), 3)
    index.update("a", s(11))
    assert index.pop_due(s(11)) == [DueTick("a", s(11), 3)]


def test_rebuild_replaces_everything() -> None:
    index = DeadlineIndex()
    index.update("old", s(1), 0)
    index.pop_due(s(1))
    index.rebuild([("a", s(5), None), ("b", None, None), ("c", s(-100), None)])
    assert len(index) == 2
    assert index.due_of("old") is None
    assert not index.is_outstanding("old")
    # A deadline that passed while no worker ran is due at once.
    assert index.pop_due(s(0)) == [DueTick("c", s(-100), None)]
    assert index.pop_due(s(5)) == [DueTick("a", s(5), None)]


def test_many_replacements_keep_the_heap_small() -> None:
    index = DeadlineIndex()
    for i in range(1000):
        index.update("a", s(i), 0)
    assert len(index._heap) <= 130  # compacted, not 1000 stale entries
    assert index.pop_due(s(2000)) == [DueTick("a", s(999), 0)]


def test_clear_forgets_all() -> None:
    index = DeadlineIndex()
    index.update("a", s(1), 0)
    index.clear()
    assert index.pop_due(s(10)) == []


def test_a_held_partition_keeps_its_clients_due_without_ticks() -> None:
    index = DeadlineIndex()
    index.update("a", s(10), 0)
    index.update("b", s(20), 1)  # partition 1 reads a backlog: its clients get no ticks
    held = {1}
    assert index.pop_due(s(60), lambda p: p in held) == [DueTick("a", s(10), 0)]
    assert not index.is_outstanding("b")  # held back, not sent
    held.clear()  # live again: what fell due is ticked
    assert index.pop_due(s(60), lambda p: p in held) == [DueTick("b", s(20), 1)]


def test_held_entries_are_parked_not_churned_and_stay_visible() -> None:
    index = DeadlineIndex()
    for i in range(200):
        index.update(f"c{i}", s(i), 1)  # all of partition 1, all due
    index.update("live", s(500), 0)
    assert index.pop_due(s(300), lambda p: p == 1) == []
    assert len(index._heap) == 1  # parked outside the heap: the next pass does not re-pop them
    assert index.next_instant() == s(0)  # still the earliest due instant
    for i in range(0, 200, 2):
        index.update(f"c{i}", s(1000 + i), 1)  # processed meanwhile: new instants
    for _ in range(5):
        assert index.pop_due(s(300), lambda p: p == 1) == []
    released = index.pop_due(s(300))  # live again: each still-due client once, no stale entry
    assert sorted(t.client_id for t in released) == sorted(f"c{i}" for i in range(1, 200, 2))


def test_take_due_names_the_due_clients_of_one_partition_and_marks_them_outstanding() -> None:
    index = DeadlineIndex()
    index.update("a", s(10), 0)
    index.update("b", s(5), 0)
    index.update("c", s(1), 1)  # another partition
    index.update("d", s(50), 0)  # not due yet
    assert index.take_due(0, s(20)) == ["b", "a"]  # earliest first
    assert index.is_outstanding("a")
    assert index.is_outstanding("b")
    assert not index.is_outstanding("c")
    # The timer sends no tick for what the step is advancing; the other partition is ticked.
    assert index.pop_due(s(20)) == [DueTick("c", s(1), 1)]
    # They stay due until their state is updated (the step stores them after the acks).
    assert index.take_due(0, s(20)) == ["b", "a"]
    index.update("a", s(60), 0)
    index.update("b", None, 0)
    assert index.take_due(0, s(20)) == []
    assert index.take_due(0, s(60)) == ["d", "a"]
    assert index.take_due(7, s(60)) == []  # a partition with nothing indexed


def test_take_due_finds_clients_indexed_by_a_rebuild_and_by_a_later_partition() -> None:
    index = DeadlineIndex()
    index.rebuild([("a", s(1), 2), ("b", s(2), None)])
    assert index.take_due(2, s(10)) == ["a"]
    index.update("b", s(2), 2)  # same instant, its partition learnt from a processed record
    assert index.take_due(2, s(10)) == ["a", "b"]


def test_take_due_survives_compaction() -> None:
    index = DeadlineIndex()
    for i in range(1000):
        index.update("a", s(i), 3)
    index.update("b", s(5), 3)
    assert sum(len(h) for h in index._by_partition.values()) <= 130
    assert index.take_due(3, s(2000)) == ["b", "a"]
