"""A client's state in the ``sla-state`` table as two keys: its core and its old generation.

``ClientState.to_parts`` splits a state so that a write costs what changed (``engine.state``):
the core goes under the client's key (the client id, UTF-8) as before, and the old generation of
its memory, rewritten only now and then, under ``old_key``: the client key and a suffix that
starts with a NUL byte, which no client id holds (identifiers refuse control characters). Both
are in the same table, so they are written through the same current event into the same
partition, its RocksDB and its changelog, and a restore or a rebalance moves them together.
The recovery index skips old generations by their magic (``streams.recovery``).

The old generation alternates between two keys (by the parity of its number): it is written
before the core that refers to it, so a crash between the two writes leaves the previous core
and the old generation it refers to intact, and the input is read again from there.

A single-value state (written before, or a small client without an old generation) is one key,
read as before. The cache of decoded states (``streams.state_cache``) compares the core's bytes
only: the core names its generation, and this worker wrote both.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.state import ClientState, generation_of
from streams.state_cache import StateCache

__all__ = ["OLD_SUFFIXES", "old_key", "read_state", "write_state"]

OLD_SUFFIXES = (b"\x00old0", b"\x00old1")
"""Appended to a client key for its old generation, by the generation's parity."""


def old_key(key: bytes, generation: int) -> bytes:
    """The table key of ``key``'s old generation number ``generation`` (> 0)."""
    return key + OLD_SUFFIXES[generation % 2]


def read_state(
    get: Callable[[bytes], bytes | None], key: bytes, cache: StateCache | None = None
) -> ClientState | None:
    """The state stored under ``key`` (None: none); ``get`` reads one table key.

    A state this worker stored last comes from ``cache`` without a decode or a second read.
    """
    core = get(key)
    if not core:
        return None
    if cache is not None:
        kept = cache.take(key, core)
        if kept is not None:
            return kept
    generation = generation_of(core)
    old = get(old_key(key, generation)) if generation else None
    return ClientState.from_parts(core, old)


def write_state(
    put: Callable[[bytes, bytes], None],
    key: bytes,
    state: ClientState,
    cache: StateCache | None = None,
    *,
    merge_at: int | None = None,
) -> int:
    """Store ``state`` under ``key`` (the old generation first, when it is rewritten); ``put``
    writes one table key. Returns the bytes written. ``state`` goes to ``cache`` as stored.
    ``merge_at``: see ``ClientState.to_parts`` (None: its default rule)."""
    parts = state.to_parts(merge_at)
    written = len(parts.core)
    if parts.old is not None:
        put(old_key(key, parts.generation), parts.old)
        written += len(parts.old)
    put(key, parts.core)
    if cache is not None:
        cache.put(key, parts.core, state, len(parts.core) + state.old_size)
    return written
