"""``streams.recovery.index_entries``: the header of state bytes indexes a client exactly like
decoding the state and asking ``Engine.next_due``, for new (headed) and old (plain JSON) bytes."""

from __future__ import annotations

from datetime import timedelta

from bench.engine import generate_realistic
from engine.core import Engine
from engine.state import HEADER_MAGIC, ClientState, read_header
from streams.recovery import index_entries, raw_table_items
from tests.builders import IN, at, email

LATENESS = timedelta(seconds=90)


def _snapshots() -> list[bytes]:
    """State bytes of many clients at many moments of a realistic live run (buffered events,
    lazy warning bounds, fired warnings, breaches, silences, answered threads)."""
    events = generate_realistic(4_000, clients=40, days=20)
    engine = Engine(allowed_lateness=LATENESS)
    states: dict[str, ClientState] = {}
    out: list[bytes] = []
    watermark = None
    for n, ev in enumerate(sorted(events, key=lambda e: e.recorded_at)):
        client = ev.client_id or ""
        states[client], _ = engine.apply(states.get(client), ev)
        watermark = ev.recorded_at if watermark is None else max(watermark, ev.recorded_at)
        engine.advance(states[client], watermark)
        if n % 97 == 0:
            out.extend(st.to_bytes() for st in states.values())
    out.extend(st.to_bytes() for st in states.values())
    return out


def test_header_gives_the_engines_next_due_and_open_count() -> None:
    engine = Engine(allowed_lateness=LATENESS)
    snapshots = _snapshots()
    assert len(snapshots) > 1_000
    items = [(ClientState.from_bytes(raw).client_id.encode(), raw) for raw in snapshots]
    entries, counts = index_entries(items, engine)
    assert len(entries) == len(snapshots)
    for (client, due, partition), raw in zip(entries, snapshots, strict=True):
        assert raw.startswith(HEADER_MAGIC)
        state = ClientState.from_bytes(raw)
        assert client == state.client_id
        assert due == engine.next_due(state)
        assert partition is None
    last = {ClientState.from_bytes(raw).client_id: raw for raw in snapshots}
    for client, raw in last.items():
        assert counts.get(client, 0) == len(ClientState.from_bytes(raw).open)


def test_states_written_before_the_header_still_load_and_index() -> None:
    engine = Engine(allowed_lateness=timedelta(minutes=5))
    st, _ = engine.apply(None, email("a", "2026-03-17T10:00", IN))
    st, _ = engine.advance(st, at("2026-03-17T10:30"))
    st, _ = engine.apply(st, email("b", "2026-03-17T10:29", IN, thread="t2"))  # buffered
    headed = st.to_bytes()
    legacy = headed[len(HEADER_MAGIC) + 12 :]  # the plain JSON that to_bytes used to write
    assert legacy.startswith(b"{")
    assert read_header(legacy) is None
    old = ClientState.from_bytes(legacy)
    assert old.to_bytes() == headed  # loads the same state, rewritten with the header
    entries, counts = index_entries([(b"c1", legacy), (b"c1", headed), (b"gone", b"")], engine)
    assert entries == [("c1", engine.next_due(old), None)] * 2
    assert counts == {"c1": len(old.open)} == {"c1": 1}


def test_header_of_a_state_with_nothing_pending() -> None:
    state = ClientState(client_id="quiet")
    header = read_header(state.to_bytes())
    assert header is not None
    assert header.pending_at is None
    assert header.open_count == 0
    entries, counts = index_entries([(b"quiet", state.to_bytes())], Engine())
    assert entries == [("quiet", None, None)]
    assert counts == {}


def test_raw_table_items_falls_back_to_items_for_stores_without_raw_bytes() -> None:
    class MemoryTable:
        data = ("not", "a", "SerializedStore")  # like Faust's in-memory store

        def items(self) -> list[tuple[bytes, bytes]]:
            return [(b"k", b"v")]

    assert list(raw_table_items(MemoryTable())) == [(b"k", b"v")]


def test_raw_table_items_reads_the_bytes_of_a_serialized_store() -> None:
    from unittest.mock import MagicMock

    from faust.stores.base import SerializedStore

    store = MagicMock(spec=SerializedStore)  # isinstance(store, SerializedStore) holds
    store._iteritems.return_value = iter([(b"c1", b"raw")])

    class Table:
        data = store

        def items(self) -> list[tuple[bytes, bytes]]:
            raise AssertionError("must not decode through the serializer registry")

    assert list(raw_table_items(Table())) == [(b"c1", b"raw")]
