"""The client states the processor stored last, kept decoded so the next step need not parse them.

The processor reads a client's state at the start of every step it is in and stores it at the
end. With many clients interleaved on a partition (the usual case), a step of a thousand events
touches nearly a thousand clients once each, so decoding every state from its bytes was the
largest single cost of a worker reading batch records (py-spy: ~29% of its CPU in
``ClientState.from_bytes``). The worker is the only writer of the partitions it holds, so the
object it just stored is what the table holds: ``StateCache`` keeps it beside the bytes written,
and ``take`` hands it back only when the table returns exactly those bytes (a byte comparison:
anything else, e.g. a state restored from the changelog by another worker, decodes). An entry is
handed over once: the engine mutates the state it is given, so a step that fails after taking
it leaves no entry behind, and the retried step decodes the stored bytes. Bounded by the bytes
of the states kept, oldest first out. Cleared whenever partitions are reassigned.
"""

from __future__ import annotations

from engine.state import ClientState

__all__ = ["StateCache"]


class StateCache:
    """Decoded states by table key, each with the bytes stored for it (see the module doc)."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        """Keep states whose stored bytes add up to at most ``max_bytes``."""
        self.max_bytes = max_bytes
        self._entries: dict[bytes, tuple[bytes, ClientState, int]] = {}
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, key: bytes, raw: bytes, state: ClientState, size: int | None = None) -> None:
        """``state`` was just stored under ``key`` as ``raw``; the caller no longer changes it.

        ``size`` is what the state counts against the bound (default: ``len(raw)``; a core
        whose old generation is under another key counts both)."""
        self._drop(key)
        weight = len(raw) if size is None else size
        if weight > self.max_bytes:
            return
        self._entries[key] = (raw, state, weight)
        self._bytes += weight
        while self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def take(self, key: bytes, raw: bytes) -> ClientState | None:
        """The state kept for ``key`` if the table holds exactly its bytes (``raw``), once."""
        entry = self._entries.pop(key, None)
        if entry is None:
            self.misses += 1
            return None
        self._bytes -= entry[2]
        if entry[0] != raw:
            self.misses += 1
            return None
        self.hits += 1
        return entry[1]

    def clear(self) -> None:
        """Forget every state (partitions reassigned: the table may hold others' writes)."""
        self._entries.clear()
        self._bytes = 0

    def _drop(self, key: bytes) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry[2]
