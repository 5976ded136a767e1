"""Which offsets may be committed when records finish out of order (pure, no Kafka).

The alert runner hands records to concurrent deliveries; a later record can finish before an
earlier one. Kafka commits one position per partition, meaning "everything before this is done",
so the commit point is the first offset that is not finished yet.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)


class OffsetTracker(Generic[P]):
    """Per partition: offsets begun in order, which of them are done, and the commit point."""

    def __init__(self) -> None:
        self._begun: dict[P, deque[int]] = {}
        self._done: dict[P, set[int]] = {}
        self._committable: dict[P, int] = {}

    def begin(self, partition: P, offset: int) -> None:
        """Record that ``offset`` was read (offsets of one partition arrive in increasing order)."""
        queue = self._begun.setdefault(partition, deque())
        if queue and offset <= queue[-1]:
            return  # re-read after a seek/rebalance: the first reading is the one tracked
        queue.append(offset)

    def done(self, partition: P, offset: int) -> None:
        """Record that ``offset`` is finished; advances the commit point if it was the oldest."""
        queue = self._begun.get(partition)
        if not queue:
            return
        finished = self._done.setdefault(partition, set())
        finished.add(offset)
        while queue and queue[0] in finished:
            first = queue.popleft()
            finished.discard(first)
            self._committable[partition] = first + 1

    def outstanding(self, partition: P | None = None) -> int:
        """Offsets begun and not yet covered by the commit point."""
        if partition is not None:
            return len(self._begun.get(partition, ()))
        return sum(len(q) for q in self._begun.values())

    def take_commits(self) -> dict[P, int]:
        """Commit positions (offset + 1) that moved since the last call; clears them."""
        out, self._committable = self._committable, {}
        return out

    def retry(self, commits: dict[P, int]) -> None:
        """Give back positions whose commit failed (a newer position, if any, wins)."""
        for partition, position in commits.items():
            current = self._committable.get(partition)
            if current is None or current < position:
                self._committable[partition] = position

    def forget(self, partition: P) -> None:
        """Drop a partition (revoked): its unfinished offsets are someone else's now."""
        self._begun.pop(partition, None)
        self._done.pop(partition, None)
        self._committable.pop(partition, None)
