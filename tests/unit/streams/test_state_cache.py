"""The processor's cache of the states it stored last: handed back only for the same bytes, once."""

from __future__ import annotations

import pytest

from engine.core import Engine
from engine.state import ClientState
from streams.state_cache import StateCache
from tests.builders import email

pytestmark = pytest.mark.unit


def stored(client: str, n: int) -> tuple[bytes, ClientState]:
    state, _ = Engine().apply(None, email(f"{client}-{n}", "2026-12-01T09:00:00Z", client=client))
    return state.to_bytes(), state


def test_the_state_stored_is_handed_back_for_its_own_bytes_once() -> None:
    cache = StateCache()
    raw, state = stored("c1", 1)
    cache.put(b"c1", raw, state)
    assert cache.take(b"c1", bytes(raw)) is state  # equal bytes (a copy from the table)
    assert cache.take(b"c1", raw) is None  # handed over once: a retried step decodes
    assert (cache.hits, cache.misses) == (1, 1)


def test_other_bytes_in_the_table_are_never_answered_from_the_cache() -> None:
    cache = StateCache()
    raw, state = stored("c1", 1)
    other, _ = stored("c1", 2)  # e.g. restored from another worker's changelog
    cache.put(b"c1", raw, state)
    assert cache.take(b"c1", other) is None
    assert len(cache) == 0  # the stale entry is gone as well


def test_the_cache_is_bounded_by_the_bytes_kept_oldest_first() -> None:
    raws = {f"c{i}".encode(): stored(f"c{i}", i) for i in range(5)}
    size = max(len(raw) for raw, _ in raws.values())
    cache = StateCache(max_bytes=size * 3)
    for key, (raw, state) in raws.items():
        cache.put(key, raw, state)
    assert len(cache) == 3
    assert cache.take(b"c0", raws[b"c0"][0]) is None  # evicted first
    assert cache.take(b"c4", raws[b"c4"][0]) is raws[b"c4"][1]
    cache.clear()
    assert len(cache) == 0
    assert cache.take(b"c3", raws[b"c3"][0]) is None
