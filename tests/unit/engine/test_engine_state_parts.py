"""``ClientState.to_parts``/``from_parts``: a state written in two generations (a core with the
young part of the memory, an old generation rewritten only on a merge) reads back as the state
round-tripped whole, across any sequence of remembering, forgetting and merging; the single-value
forms written before still load; a core never loads without its own old generation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import threads
from engine.state import OLD_MAGIC, ClientState, StateParts, generation_of, read_header

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
KEYS = [f"k{i}" for i in range(12)]  # few keys: the same ones are set, deleted and set again


class Table:
    """The two keys of one client as the processor stores them (old generation first)."""

    def __init__(self) -> None:
        self.core: bytes | None = None
        self.old: dict[int, bytes] = {}  # by the generation's parity, as the two table keys

    def write(self, state: ClientState, merge_at: int | None) -> StateParts:
        parts = state.to_parts(merge_at)
        if parts.old is not None:
            self.old[parts.generation % 2] = parts.old
        self.core = parts.core
        return parts

    def read(self) -> ClientState:
        assert self.core is not None
        generation = generation_of(self.core)
        return ClientState.from_parts(self.core, self.old.get(generation % 2))


def whole(state: ClientState) -> ClientState:
    return ClientState.from_bytes(state.to_bytes())


# One operation on the memory: what the engine does to it (remember an id, fulfil or re-root a
# thread, note a chase, link message ids, move the windows), or a store and load.
op = st.one_of(
    st.tuples(st.just("remember"), st.integers(0, 400), st.integers(-30, 30)),
    st.tuples(st.just("answer"), st.sampled_from(KEYS), st.integers(-30, 30)),
    st.tuples(st.just("unanswer"), st.sampled_from(KEYS), st.just(0)),
    st.tuples(st.just("chase"), st.sampled_from(KEYS), st.integers(-30, 30)),
    st.tuples(st.just("link"), st.sampled_from(KEYS), st.integers(-30, 30)),
    st.tuples(st.just("forget"), st.integers(0, 3), st.integers(0, 30)),
    st.tuples(st.just("store"), st.integers(0, 12), st.just(0)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, min_size=20, max_size=200))
def test_parts_read_back_as_the_state_round_tripped_whole(
    ops: list[tuple[str, object, int]],
) -> None:
    state = ClientState(client_id="c1")
    table = Table()
    now = T0  # event time moves forward; instants are drawn around it
    cutoff = T0 - timedelta(days=3)
    serial = 0
    for name, arg, delta in ops:
        at = now + timedelta(hours=delta)
        if name == "remember":
            serial += 1
            state.remember(f"ev-{serial}-{arg}", at)
        elif name == "answer":
            state.set_answered(str(arg), at)
        elif name == "unanswer":
            state.pop_answered(str(arg))
        elif name == "chase":
            state.set_chased(str(arg), at)
        elif name == "link":
            parent = KEYS[(KEYS.index(str(arg)) * 7 + delta) % len(KEYS)]
            threads.link_chain(state.links, [parent, str(arg)], at, state.young_links)
            threads.root_of(state.links, str(arg), at, state.young_links)
        elif name == "forget":
            # The windows only move forward (the engine's processed time never goes back).
            now += timedelta(hours=int(str(arg)) * 12 + delta)
            cutoff = max(cutoff, now - timedelta(days=1))
            state.forget_before(cutoff, cutoff - timedelta(hours=delta))
        else:
            expected = whole(state)
            parts = table.write(state, int(str(arg)))
            assert read_header(parts.core) == read_header(state.to_bytes())
            state = table.read()
            assert state == expected
            assert state.seen == {i for _, i in state.seen_order}
            if not parts.generation:
                assert parts.core == expected.to_bytes()  # no old generation: the whole state
    expected = whole(state)
    table.write(state, None)
    assert table.read() == expected


def busy(n: int) -> ClientState:
    """A state with ``n`` seen ids and as many fulfilled threads, links and chases."""
    state = ClientState(client_id="busy")
    for i in range(n):
        at = T0 + timedelta(minutes=i)
        state.remember(f"ev-{i}", at)
        state.set_answered(f"t{i}", at)
        state.set_chased(f"t{i}", at)
        threads.link_chain(state.links, [f"m{i // 3}", f"m{i}"], at, state.young_links)
    return state


def test_a_write_costs_what_changed_between_merges() -> None:
    state = busy(1000)
    table = Table()
    first = table.write(state, None)
    assert first.old is not None
    assert first.generation == 1
    size = len(first.old)
    written = []
    for i in range(1000, 1300):
        state = table.read()
        at = T0 + timedelta(minutes=i)
        state.remember(f"ev-{i}", at)
        state.set_answered(f"t{i}", at)
        parts = table.write(state, None)
        written.append(len(parts.core) + len(parts.old or b""))
    merged = [w for w in written if w > size]
    assert 1 <= len(merged) <= 3  # young items past the threshold now and then
    assert sum(written) / len(written) < size / 10
    assert table.read() == whole(state)


def test_single_value_states_written_before_still_load() -> None:
    state = busy(300)
    state.forget_before(T0 + timedelta(minutes=100), T0 + timedelta(minutes=50))
    headed = state.to_bytes()  # body version 2 behind the header
    plain = headed[16:]  # before the header existed: plain JSON
    data = orjson.loads(plain)
    del data["links"]
    data["v"] = 1
    v1 = orjson.dumps(data)  # before e-mail threading: no links
    assert ClientState.from_parts(headed, None) == whole(state)
    assert ClientState.from_parts(plain, None) == whole(state)
    old_form = ClientState.from_parts(v1, None)
    assert old_form.links == {}
    assert old_form.seen_order == whole(state).seen_order
    # The next write of a loaded big state merges it into its first old generation.
    table = Table()
    loaded = ClientState.from_parts(headed, None)
    assert table.write(loaded, None).generation == 1
    assert table.read() == whole(state)


def test_a_crash_between_the_two_writes_leaves_the_previous_state_readable() -> None:
    state = busy(400)
    table = Table()
    table.write(state, 10)  # generation 1
    before = table.read()
    expected = whole(before)
    before.remember("ev-late", T0 + timedelta(days=1))
    parts = before.to_parts(0)  # generation 2, in the other key
    assert parts.generation == 2
    assert parts.old is not None
    table.old[parts.generation % 2] = parts.old  # ... and the worker dies before the core
    assert table.read() == expected


def test_a_core_never_loads_without_its_own_old_generation() -> None:
    state = busy(400)
    parts = state.to_parts(10)
    assert parts.old is not None
    assert parts.old[:4] == OLD_MAGIC
    again = ClientState.from_parts(parts.core, parts.old)
    again.remember("ev-next", T0 + timedelta(days=1))
    newer = again.to_parts(0)
    assert newer.old is not None
    with pytest.raises(ValueError, match="old generation 1, found none"):
        ClientState.from_parts(parts.core, None)
    with pytest.raises(ValueError, match=r"old generation 1, found .* generation 2"):
        ClientState.from_parts(parts.core, newer.old)
    with pytest.raises(ValueError, match="read it with from_parts"):
        ClientState.from_bytes(parts.core)
