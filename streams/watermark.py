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

A partition nobody has read yet (after a restart, before its first batch) counts as caught up,
so a deadline that passed while no worker ran still fires at once. Pure: no Kafka, no clock.
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
        self._event_time: dict[int, datetime] = {}
        self._behind: set[int] = set()

    def observe(self, partition: int, occurred_at: datetime) -> datetime:
        """Take one interaction event's time; the partition's event time so far."""
        seen = self._event_time.get(partition)
        if seen is None or occurred_at > seen:
            self._event_time[partition] = seen = occurred_at
        return seen

    def event_time(self, partition: int) -> datetime | None:
        """The largest event time read on ``partition`` (None: nothing read yet)."""
        return self._event_time.get(partition)

    def read_up_to(self, partition: int, offset: int, highwater: int | None) -> None:
        """The last record read on ``partition`` is ``offset``; Kafka's log end is ``highwater``.

        ``highwater`` None (not known yet) counts as the log end: never hold timers back on a
        guess.
        """
        if highwater is not None and offset + 1 < highwater:
            self._behind.add(partition)
        else:
            self._behind.discard(partition)

    def catching_up(self, partition: int | None, now: datetime) -> bool:
        """Whether ``partition`` reads a backlog: records behind, event time ``gap`` behind now."""
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

    def clear(self) -> None:
        """Forget everything (partitions reassigned): all live until read again."""
        self._event_time.clear()
        self._behind.clear()
