"""A client's state stored as core + old generation (``streams.state_parts``): a log replayed
with every client's state written to a table and read back between batches gives the facts of
one in-memory replay and of today's single-value writes, byte for byte, and the same states;
the state cache answers a hit from the core alone; the recovery index skips old generations."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from bench.engine import START, generate_realistic
from engine.core import Engine
from engine.state import ClientState
from schemas.base import encode
from schemas.events import Channel, ClientPolicyChanged, Direction, InteractionEvent, Kind
from shinrai.errors import InputRejected
from streams.recovery import index_entries
from streams.state_cache import StateCache
from streams.state_parts import OLD_SUFFIXES, old_key, read_state, write_state

pytestmark = pytest.mark.unit

Event = InteractionEvent | ClientPolicyChanged


def mail(n: int, client: str, at: datetime, inbound: bool, root: int, depth: int) -> Event:
    """Message ``depth`` of conversation ``root`` (schema v2 ids: links in the thread memory);
    the later ones name their direct parent only (a bare In-Reply-To), so a message read before
    its parent makes a root that later gets a parent (re-threading, path compression)."""
    keys = [hashlib.md5(f"{client}.{root}.{k}".encode()).hexdigest() for k in range(depth + 1)]
    if depth >= 2:
        keys = keys[-2:]
    return InteractionEvent(
        schema_version=2,
        event_id=f"mail-{client}-{n}",
        channel=Channel.EMAIL,
        kind=Kind.MESSAGE,
        direction=Direction.INBOUND if inbound else Direction.OUTBOUND,
        occurred_at=at,
        recorded_at=at,
        client_id=client,
        counterpart=f"someone-{root % 7}@example.com",
        message_key=keys[-1],
        parent_keys=tuple(keys[:-1]),
    )


def arrivals() -> list[Event]:
    """Twenty days of a realistic log and of threaded mail, in arrival order: mostly in event
    time, some late (within and past the lateness), some delivered twice."""
    rng = random.Random(11)
    events: list[Event] = list(generate_realistic(1500, clients=5, days=20))
    n = 0
    for client in ("mail-a", "mail-b"):
        at = START
        for root in range(160):
            at += timedelta(minutes=rng.randrange(30, 300))
            for depth in range(rng.randrange(1, 5)):
                n += 1
                when = at + timedelta(minutes=40 * depth)
                if depth == 1 and root % 3 == 0:
                    when += timedelta(hours=5)  # the first reply is read after the follow-ups
                events.append(mail(n, client, when, depth % 2 == 0, root, depth))
    events.sort(key=lambda e: e.occurred_at)
    out: list[Event] = []
    for ev in events:
        if out and rng.random() < 0.1:
            out.insert(max(0, len(out) - rng.randrange(1, 40)), ev)  # late
        else:
            out.append(ev)
        if rng.random() < 0.03:
            out.append(ev)  # delivered again
    return out


Load = Callable[[str], ClientState | None]
Store = Callable[[str, ClientState], None]


def replay(load: Load, store: Store) -> list[bytes]:
    """Facts (and rejections) of the log in batches of 40, each client's state loaded before
    and stored after each batch it is in; the engine forgets within the log (short windows)."""
    engine = Engine(
        allowed_lateness=timedelta(hours=2),
        duplicate_window=timedelta(days=2),
        thread_memory=timedelta(days=3),
    )
    log = arrivals()
    out: list[bytes] = []
    watermark = START
    for first in range(0, len(log), 40):
        batch = log[first : first + 40]
        watermark = max(watermark, *(e.occurred_at for e in batch))
        clients: dict[str, list[Event]] = {}
        for ev in batch:
            clients.setdefault(ev.client_id or "", []).append(ev)
        for client, events in clients.items():
            state = load(client)
            for ev in events:
                try:
                    state, facts = engine.apply(state, ev)
                except InputRejected as exc:
                    out.append(f"rejected {ev.event_id}: {exc}".encode())
                    continue
                out.extend(encode(f) for f in facts)
            assert state is not None
            state, facts = engine.advance(state, watermark)
            out.extend(encode(f) for f in facts)
            store(client, state)
    return out


class Table:
    """A state table as the processor sees it: bytes by key, writes counted."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.reads: list[bytes] = []
        self.written = 0

    def get(self, key: bytes) -> bytes | None:
        self.reads.append(key)
        return self.data.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self.data[key] = value
        self.written += len(value)


def in_memory() -> tuple[list[bytes], dict[str, ClientState]]:
    states: dict[str, ClientState] = {}
    facts = replay(states.get, states.__setitem__)
    return facts, states


def single_values() -> tuple[list[bytes], Table]:
    table = Table()

    def load(client: str) -> ClientState | None:
        raw = table.get(client.encode())
        return None if raw is None else ClientState.from_bytes(raw)

    def store(client: str, state: ClientState) -> None:
        table.put(client.encode(), state.to_bytes())

    return replay(load, store), table


def in_parts(merge_at: int | None, cache: StateCache | None) -> tuple[list[bytes], Table]:
    table = Table()

    def load(client: str) -> ClientState | None:
        return read_state(table.get, client.encode(), cache)

    def store(client: str, state: ClientState) -> None:
        write_state(table.put, client.encode(), state, cache, merge_at=merge_at)

    return replay(load, store), table


_SINGLES: list[tuple[list[bytes], Table]] = []


def singles() -> tuple[list[bytes], Table]:
    """``single_values()``, computed once."""
    if not _SINGLES:
        _SINGLES.append(single_values())
    return _SINGLES[0]


@pytest.fixture(scope="module")
def reference() -> tuple[list[bytes], dict[str, ClientState]]:
    return in_memory()


@pytest.mark.parametrize(("merge_at", "cached"), [(6, False), (40, False), (None, True)])
def test_a_log_replayed_through_parts_gives_the_facts_and_states_of_one_replay(
    reference: tuple[list[bytes], dict[str, ClientState]], merge_at: int | None, cached: bool
) -> None:
    facts, states = reference
    assert len(facts) > 1000
    cache = StateCache() if cached else None
    got, table = in_parts(merge_at, cache)
    assert got == facts
    old_keys = [k for k in table.data if k.endswith(OLD_SUFFIXES)]
    if merge_at is not None:
        assert len(old_keys) >= 2  # the busy clients merged
    # The same states as today's single values, or with the cache (never reloaded) as the
    # in-memory replay: a state kept in memory may still hold thread memory past the horizon
    # (swept once a day, and on every load), which changes no fact.
    _, single = singles()
    assert set(single.data) == {k for k in table.data if k not in old_keys}
    assert set(states) == {k.decode() for k in single.data}
    for key, raw in single.data.items():
        kept = states[key.decode()] if cached else None
        want = ClientState.from_bytes(raw if kept is None else kept.to_bytes())
        assert read_state(table.get, key) == want
    if cache is not None:
        assert cache.hits > 0
        assert cache.misses == 0  # one worker, every state it wrote handed back from the cache


def test_parts_give_the_facts_of_single_value_writes_for_fewer_bytes(
    reference: tuple[list[bytes], dict[str, ClientState]],
) -> None:
    whole, single = singles()
    parts, table = in_parts(6, None)
    assert whole == parts == reference[0]
    # Even merging after six changed items the bytes written shrink (the mail clients' memory
    # is most of their state).
    assert table.written < single.written


def test_a_cache_hit_reads_the_core_only_and_a_miss_reads_both_keys() -> None:
    state = ClientState(client_id="c1")
    for i in range(50):
        state.remember(f"ev-{i}", START + timedelta(minutes=i))
    table, cache = Table(), StateCache()
    write_state(table.put, b"c1", state, cache, merge_at=10)
    assert old_key(b"c1", 1) in table.data
    assert read_state(table.get, b"c1", cache) is state
    assert table.reads == [b"c1"]
    table.reads.clear()
    loaded = read_state(table.get, b"c1", cache)  # handed over once: now decoded
    assert loaded == ClientState.from_bytes(state.to_bytes())
    assert loaded is not state
    assert table.reads == [b"c1", old_key(b"c1", 1)]


def test_the_recovery_index_skips_old_generations(
    reference: tuple[list[bytes], dict[str, ClientState]],
) -> None:
    _, table = in_parts(6, None)
    _, single = singles()
    engine = Engine(allowed_lateness=timedelta(hours=2))
    assert any(k.endswith(OLD_SUFFIXES) for k in table.data)
    assert index_entries(table.data.items(), engine) == index_entries(single.data.items(), engine)
