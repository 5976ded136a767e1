"""The live deadline index: which client needs a tick, and when (pure, no Kafka, no clock).

The engine says, per client, the watermark at which ``advance`` next has work
(``Engine.next_due``). A worker keeps those instants for the partitions it holds in a heap and,
on every timer pass, pops the clients whose instant has come; the processor sends one tick per
partition with due clients (through the ticks topic, because a Faust table may only be written
inside stream iteration), and the step, reading it, asks the index which clients of that
partition are due (:meth:`DeadlineIndex.take_due`, also asked for every live partition an
interactions batch reads, so a busy partition's due clients need no tick at all).

Rules:

* One current due instant per client; ``update`` replaces it (lazy deletion: stale heap entries
  are skipped when popped).
* A popped client is *outstanding* until its state is updated again (the tick was processed):
  the timer does not send a second tick for the same (client, due) meanwhile. An outstanding tick
  that stays unanswered for ``resend_after`` (lost in a rebalance, say) is sent again, so a
  deadline can never get stuck.
* ``take_due(partition, now)`` names every client of the partition whose instant has come
  (outstanding or not) and marks them outstanding: the step is about to advance them, so the
  timer does not tick them meanwhile. They stay due until their state is updated.
* ``rebuild`` replaces everything from a table scan (after a restart or a rebalance).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["DeadlineIndex", "DueTick"]


@dataclass(frozen=True, slots=True)
class DueTick:
    """A tick to send: the client, the instant it is for, and the partition if known."""

    client_id: str
    due: datetime
    partition: int | None


class DeadlineIndex:
    """Earliest-due-first index of clients with pending engine work."""

    def __init__(self, *, resend_after: timedelta = timedelta(seconds=10)) -> None:
        """``resend_after``: how long an unanswered tick stays outstanding before it is resent."""
        self.resend_after = resend_after
        self._heap: list[tuple[datetime, str]] = []
        self._due: dict[str, datetime] = {}
        self._partition: dict[str, int | None] = {}
        self._sent: dict[str, datetime] = {}  # client -> when its outstanding tick was sent
        # Due entries of held partitions, out of the heap until the partition is released (a
        # backlog of thousands of due clients would otherwise be popped and pushed every pass).
        self._parked: dict[int | None, list[tuple[datetime, str]]] = {}
        # The same entries per partition, for ``take_due`` (lazy deletion as in ``_heap``).
        self._by_partition: dict[int | None, list[tuple[datetime, str]]] = {}
        self._taking: set[str] = set()  # scratch of ``take_due``

    def __len__(self) -> int:
        """The number of clients with a pending due instant."""
        return len(self._due)

    def due_of(self, client_id: str) -> datetime | None:
        """The current due instant of ``client_id`` (None: nothing pending)."""
        return self._due.get(client_id)

    def is_outstanding(self, client_id: str) -> bool:
        """Whether a tick for ``client_id`` has been sent and not yet answered."""
        return client_id in self._sent

    def update(self, client_id: str, due: datetime | None, partition: int | None = None) -> None:
        """Record the client's new due instant after its state changed (None: nothing pending).

        Any outstanding tick of the client counts as answered: its state was just processed.
        """
        self._sent.pop(client_id, None)
        before = self._partition.get(client_id)
        if partition is not None or client_id not in self._partition:
            self._partition[client_id] = partition
        if due is None:
            self._due.pop(client_id, None)
            self._partition.pop(client_id, None)
            return
        if self._due.get(client_id) == due:
            if before != partition and partition is not None:  # its partition learnt only now
                heapq.heappush(self._by_partition.setdefault(partition, []), (due, client_id))
            return  # already in the heap with this instant
        self._due[client_id] = due
        heapq.heappush(self._heap, (due, client_id))
        heapq.heappush(
            self._by_partition.setdefault(self._partition.get(client_id), []), (due, client_id)
        )
        self._compact()

    def take_due(self, partition: int | None, now: datetime) -> list[str]:
        """Every client of ``partition`` whose instant is at or before ``now``, earliest first,
        outstanding or not; each is marked outstanding (the caller advances it now, so the timer
        sends no tick for it until ``resend_after``). They stay due until updated."""
        heap = self._by_partition.get(partition)
        if not heap:
            return []
        out: list[str] = []
        kept: list[tuple[datetime, str]] = []
        while heap and heap[0][0] <= now:
            due, client = heapq.heappop(heap)
            if self._due.get(client) != due or self._partition.get(client) != partition:
                continue  # stale: a newer instant (or none), or the client moved
            if client in self._taking:
                continue  # the same entry twice: kept once
            self._taking.add(client)
            kept.append((due, client))
            out.append(client)
            self._sent[client] = now
        for entry in kept:
            heapq.heappush(heap, entry)
        self._taking.clear()
        return out

    def pop_due(
        self, now: datetime, held: Callable[[int | None], bool] | None = None
    ) -> list[DueTick]:
        """Every client whose instant is at or before ``now`` and needs a tick (marked sent).

        A client whose tick is outstanding is returned again only after ``resend_after``.
        A client of a partition ``held(partition)`` names (``streams.watermark``: one reading
        a backlog, whose clients are advanced by their own events) stays due, unsent.
        """
        for partition in [p for p in self._parked if held is None or not held(p)]:
            for entry in self._parked.pop(partition):
                heapq.heappush(self._heap, entry)
        out: list[DueTick] = []
        kept: list[tuple[datetime, str]] = []
        while self._heap and self._heap[0][0] <= now:
            due, client = heapq.heappop(self._heap)
            if self._due.get(client) != due:
                continue  # stale: the client has a newer instant (or none)
            partition = self._partition.get(client)
            if held is not None and held(partition):
                self._parked.setdefault(partition, []).append((due, client))
                continue
            kept.append((due, client))  # stays due until its state is updated
            sent = self._sent.get(client)
            if sent is not None and now - sent < self.resend_after:
                continue
            self._sent[client] = now
            out.append(DueTick(client, due, self._partition.get(client)))
        for entry in kept:
            heapq.heappush(self._heap, entry)
        return out

    def next_instant(self) -> datetime | None:
        """The earliest due instant in the index (stale entries ignored), if any."""
        while self._heap and self._due.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        parked = [due for entries in self._parked.values() for due, client in entries
                  if self._due.get(client) == due]  # fmt: skip
        if self._heap:
            parked.append(self._heap[0][0])
        return min(parked) if parked else None

    def rebuild(self, entries: Iterable[tuple[str, datetime | None, int | None]]) -> None:
        """Forget everything and index ``(client_id, due, partition)`` from a table scan."""
        self.clear()
        for client_id, due, partition in entries:
            if due is not None:
                self._due[client_id] = due
                self._partition[client_id] = partition
        self._heap = [(due, client) for client, due in self._due.items()]
        heapq.heapify(self._heap)
        self._index_partitions()

    def clear(self) -> None:
        """Forget every entry (partitions revoked)."""
        self._heap.clear()
        self._parked.clear()
        self._by_partition.clear()
        self._due.clear()
        self._partition.clear()
        self._sent.clear()

    def _compact(self) -> None:
        # Lazy deletion leaves stale entries behind; rebuild when they dominate the heap.
        size = len(self._heap) + sum(len(entries) for entries in self._parked.values())
        if size > 64 and size > 2 * len(self._due):
            self._parked.clear()  # every live entry goes back to the heap (re-parked if held)
            self._heap = [(due, client) for client, due in self._due.items()]
            heapq.heapify(self._heap)
            self._index_partitions()

    def _index_partitions(self) -> None:
        """The per-partition heaps afresh from the current instants."""
        self._by_partition = {}
        for client, due in self._due.items():
            self._by_partition.setdefault(self._partition.get(client), []).append((due, client))
        for heap in self._by_partition.values():
            heapq.heapify(heap)
