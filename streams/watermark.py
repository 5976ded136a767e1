"""The live watermark per partition: the wall clock, or event time while a backlog is read.

DESIGN §3: timers fire when the watermark passes an instant; live, the watermark is the wall
clock. But a partition read with a backlog behind it (a worker that was down, an integration
that pushed a few weeks of history at once) holds events whose instants are all behind the wall
clock. Advancing a client to the wall clock after its first backlog event would make every
later event of the client late: breaches fired (and paged) for obligations whose answers are
the next records of the log, corrections and retractions, and events older than the engine's
duplicate window dropped. So, per partition of the interactions topic:

* **caught up** (the last record read is the log end Kafka reported with it): the watermark is
  the wall clock, exactly as before;
* **catching up** (records are still behind the last one read): the watermark is the event time
  read so far on the partition (the largest ``occurred_at`` of its interaction events, never
  later than the wall clock): the backlog is processed as a replay would process it, and the
  engine's allowed lateness covers the usual disorder between integrations.

``ClientPolicyChanged`` events do not move the event time: the directory feed stamps them with
the wall clock at announcement, which would otherwise turn the rest of a backlog late.

A partition nobody has read yet (after a restart, before its first batch) counts as caught up,
so a deadline that passed while no worker ran still fires at once. Pure: no Kafka, no clock.
"""

from __future__ import annotations

from datetime import datetime

__all__ = ["PartitionWatermarks"]


class PartitionWatermarks:
    """Event time read so far, and whether a backlog remains, per interactions partition."""

    def __init__(self) -> None:
        """Nothing read: every partition is caught up (the wall clock rules)."""
        self._event_time: dict[int, datetime] = {}
        self._catching_up: set[int] = set()

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

        ``highwater`` None (not known yet) counts as caught up: never hold timers back on a
        guess.
        """
        if highwater is not None and offset + 1 < highwater:
            self._catching_up.add(partition)
        else:
            self._catching_up.discard(partition)

    def catching_up(self, partition: int | None) -> bool:
        """Whether a backlog remains behind the last record read on ``partition``."""
        return partition in self._catching_up

    @property
    def partitions_catching_up(self) -> int:
        """How many partitions are reading a backlog (a gauge)."""
        return len(self._catching_up)

    def watermark(self, partition: int | None, now: datetime) -> datetime:
        """The instant clients of ``partition`` may be advanced to: ``now`` or the event time."""
        if partition is None or partition not in self._catching_up:
            return now
        seen = self._event_time.get(partition)
        return now if seen is None or seen > now else seen

    def clear(self) -> None:
        """Forget everything (partitions reassigned): all caught up until read again."""
        self._event_time.clear()
        self._catching_up.clear()
