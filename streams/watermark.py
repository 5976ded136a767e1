"""The live watermark per partition: the wall clock, or event time while a backlog is read.

DESIGN §3: timers fire when the watermark passes an instant; live, the watermark is the wall
clock. But a partition read with a backlog behind it (a worker that was down, an integration
that pushed a few weeks of history at once) holds events whose instants are all behind the wall
clock. Advancing a client to the wall clock after its first backlog event would make every
later event of the client late: breaches fired (and paged) for obligations whose answers are
the next records of the log, corrections and retractions, and events older than the engine's
duplicate window dropped. So, per partition of the interactions topic:

* **live** (the last record read is the log end Kafka reported with it, or the partition's event
  time is within ``gap`` of the wall clock): the watermark is the wall clock, exactly as before;
* **catching up** (records are still behind the last one read, and the event time read so far
  is more than ``gap`` behind the wall clock): the watermark is that event time (the largest
  ``occurred_at`` of the partition's interaction events): the backlog is processed as a replay
  would process it, and the engine's allowed lateness covers the usual disorder between
  integrations. The timer sends no ticks to such a partition: each client is advanced by its
  own events, and whatever fell due is ticked once the partition is live again (a client's
  facts depend only on its own events and the watermark, never on other clients').

Within a batch each client is also advanced, after each of its events, to the partition's event
time read up to that event, live or not: a batch read at once is processed in event order.

``ClientPolicyChanged`` events do not move the event time: the directory feed stamps them with
the wall clock at announcement, which would otherwise turn the rest of a backlog late. A backlog
that starts with policy changes (a log usually does) has no event time yet: its clients are not
advanced at all until an interaction is read.

After an assignment (a restart, a rebalance) a partition whose read position is behind its log
end counts as reading a backlog until the records that were queued then are read
(:meth:`PartitionWatermarks.assigned`): ticks and the end-of-batch advance would otherwise move
its clients to the wall clock before their queued replies are read (a warning paged, then
retracted). A partition assigned with nothing queued is live at once, so a deadline that passed
while no worker ran still fires at once.

Outliers: the partition's event time is the *second* largest ``occurred_at`` read (none while
only one event was read; it never moves back), so one event dated far ahead (a wrong clock; the processor
dead-letters anything beyond the allowed skew) cannot make a backlog look live and turn the rest
of it late. Pure: no Kafka, no clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = ["PartitionWatermarks"]


class PartitionWatermarks:
    """Event time read so far, and whether a backlog remains, per interactions partition."""

    def __init__(self, gap: timedelta = timedelta(seconds=10)) -> None:
        """Nothing read: every partition is live (the wall clock rules).

        ``gap``: how far behind the wall clock a partition's event time must be, with records
        still behind the last one read, for the partition to read as a backlog. Below it the
        partition is live even with a few records queued (a busy moment), so timers keep firing
        on the wall clock.
        """
        self.gap = gap
        self._event_time: dict[int, datetime] = {}  # the second largest event time read
        self._top: dict[int, tuple[datetime, datetime | None]] = {}  # the two largest read
        self._behind: set[int] = set()
        self._target: dict[int, int] = {}  # log end at assignment, while not yet read up to
        self._unknown = False  # an assignment whose queued records are not known yet

    def observe(self, partition: int, occurred_at: datetime) -> datetime | None:
        """Take one interaction event's time; the partition's event time so far: the second
        largest time read (robust to one outlier), never moving back (None: one event read)."""
        top = self._top.get(partition)
        if top is None:
            self._top[partition] = (occurred_at, None)
            return self._event_time.get(partition)
        first, second = top
        if occurred_at > first:
            first, second = occurred_at, first
        elif second is None or occurred_at > second:
            second = occurred_at
        self._top[partition] = (first, second)
        seen = self._event_time.get(partition)
        if second is not None and (seen is None or second > seen):
            self._event_time[partition] = seen = second
        return seen

    def event_time(self, partition: int) -> datetime | None:
        """The partition's event time read so far (None: nothing read yet)."""
        return self._event_time.get(partition)

    def assigned(self, partition: int, position: int | None, log_end: int | None) -> None:
        """``partition`` was (re)assigned with its next offset to read at ``position`` and its
        log end at ``log_end``: it reads a backlog until the records before ``log_end`` are read.
        Unknown offsets count as nothing queued (never hold timers back on a guess)."""
        self._event_time.pop(partition, None)
        self._top.pop(partition, None)
        if position is not None and log_end is not None and position < log_end:
            self._behind.add(partition)
            self._target[partition] = log_end
        else:
            self._behind.discard(partition)
            self._target.pop(partition, None)

    def read_up_to(self, partition: int, offset: int, highwater: int | None) -> None:
        """The last record read on ``partition`` is ``offset``; Kafka's log end is ``highwater``.

        ``highwater`` None (not known yet) counts as the log end: never hold timers back on a
        guess, except for what was queued at assignment.
        """
        end = highwater if highwater is not None else -1
        target = self._target.get(partition)
        if target is not None:
            if offset + 1 >= target:
                del self._target[partition]
            else:
                end = max(end, target)
        if offset + 1 < end:
            self._behind.add(partition)
        else:
            self._behind.discard(partition)

    def catching_up(self, partition: int | None, now: datetime) -> bool:
        """Whether ``partition`` reads a backlog: records behind, event time ``gap`` behind now
        (or, after :meth:`clear`, any partition until :meth:`assignment_known`)."""
        if self._unknown:
            return True
        if partition is None or partition not in self._behind:
            return False
        seen = self._event_time.get(partition)
        return seen is None or seen < now - self.gap

    def partitions_catching_up(self, now: datetime) -> int:
        """How many partitions read a backlog (a gauge)."""
        return sum(1 for partition in self._behind if self.catching_up(partition, now))

    def watermark(self, partition: int | None, now: datetime) -> datetime | None:
        """The instant clients of ``partition`` may be advanced to: its event time while it
        reads a backlog (None when only policy changes have been read yet: no advance at all),
        else ``now``."""
        if partition is not None and self.catching_up(partition, now):
            return self._event_time.get(partition)
        return now

    def assignment_known(self) -> None:
        """Every partition of the new assignment went through :meth:`assigned`: the ones with
        nothing queued are live from now on."""
        self._unknown = False

    def clear(self) -> None:
        """Forget everything (partitions reassigned): every partition reads as a backlog (no
        tick, no wall-clock advance: a tick read before the assignment is known must not move
        a client past its queued replies) until :meth:`assignment_known`."""
        self._event_time.clear()
        self._top.clear()
        self._behind.clear()
        self._target.clear()
        self._unknown = True
