"""State bytes of a busy client: the bulk segments (seen ids, thread memory) round-trip exactly,
and reading back bytes this process wrote (``WrittenStates``) gives what a full decode gives."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from engine.core import Engine
from engine.state import WRITTEN_MIN_BYTES, ClientState, written_states
from schemas.events import Direction
from tests.unit.engine.builders import IN, OUT, email

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # a Monday
TOKYO = timezone(timedelta(hours=9))


def _key(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:32]


def _busy(conversations: int) -> tuple[Engine, ClientState, datetime]:
    """A client after ``conversations`` answered e-mail conversations with message ids, every
    fourth one dated in Tokyo time (instants with another offset than UTC)."""
    engine = Engine(allowed_lateness=timedelta(0))
    st = ClientState(client_id="c1")
    t = T0
    for n in range(conversations):
        q = t if n % 4 else t.astimezone(TOKYO)
        question = email(f"q{n}", q, IN, thread=None, schema_version=2, message_key=_key(f"q{n}"))
        answer = email(f"a{n}", t + timedelta(minutes=5), OUT, thread=None, schema_version=2,
                       message_key=_key(f"a{n}"), parent_keys=(_key(f"q{n}"),))  # fmt: skip
        for ev in (question, answer):
            st, _ = engine.apply(st, ev)
        t += timedelta(minutes=9)
        st, _ = engine.advance(st, t)
    return engine, st, t


def _decoded(raw: bytes) -> ClientState:
    written_states.clear()
    return ClientState.from_bytes(raw)


def test_a_busy_state_round_trips_exactly_and_reading_it_back_equals_a_full_decode() -> None:
    engine, st, t = _busy(600)
    raw = st.to_bytes()
    assert len(raw) >= WRITTEN_MIN_BYTES  # big enough to be kept
    assert len(st.seen) > 1000
    assert len(st.links) > 500
    assert len(st.answered) > 500
    kept = ClientState.from_bytes(raw)  # handed over from what to_bytes kept
    full = _decoded(raw)  # parsed from the bytes
    assert kept == full
    assert kept.seen == st.seen
    assert kept.links == st.links
    assert kept.answered == st.answered
    assert list(kept.seen_order) == list(st.seen_order)
    assert kept.to_bytes() == full.to_bytes() == raw
    # Both go on alike: the same facts and the same bytes after more events.
    outs = []
    for state in (kept, full):
        out = []
        for n in range(3):
            ev = email(f"late{n}", t + timedelta(minutes=n), IN, thread=f"x{n}")
            state, facts = engine.apply(state, ev)
            out += facts
        state, facts = engine.advance(state, t + timedelta(days=2))
        outs.append((out + facts, state.to_bytes()))
    assert outs[0] == outs[1]
    assert outs[0][0]  # the events did something (obligations opened, then breached)


def test_kept_containers_are_independent_of_the_written_state_and_handed_over_once() -> None:
    engine, st, t = _busy(600)
    raw = st.to_bytes()
    # The caller goes on with the state it wrote: what was kept must not follow it.
    st, _ = engine.apply(st, email("after", t, Direction.INBOUND, thread="t9"))
    assert "after" in st.seen
    first = ClientState.from_bytes(raw)
    assert "after" not in first.seen
    first.seen.add("mutated")
    first.answered.clear()
    # A second read of the same bytes (a retried batch) decodes them: the mutation is not seen.
    second = ClientState.from_bytes(raw)
    assert "mutated" not in second.seen
    assert second.answered == _decoded(raw).answered != {}
    assert second.to_bytes() == raw


def test_other_bytes_are_decoded_not_taken_from_what_was_kept() -> None:
    _, st, _ = _busy(600)
    raw = st.to_bytes()
    other = raw.replace(b'"c1"', b'"c2"', 1)  # same length and tail, other content
    assert len(other) == len(raw)
    assert other != raw
    assert ClientState.from_bytes(other).client_id == "c2"
    assert ClientState.from_bytes(raw).client_id == "c1"
