"""State bytes of a busy client: the bulk segments (seen ids, thread memory) round-trip exactly,
and the decoded state goes on exactly as the state that was written."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from engine.core import Engine
from engine.state import ClientState
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


def test_a_busy_state_round_trips_exactly_and_goes_on_like_the_original() -> None:
    engine, st, t = _busy(600)
    raw = st.to_bytes()
    assert len(st.seen) > 1000
    assert len(st.links) > 500
    assert len(st.answered) > 500
    decoded = ClientState.from_bytes(raw)
    assert decoded.seen == st.seen
    assert decoded.links == st.links
    assert decoded.answered == st.answered
    assert list(decoded.seen_order) == list(st.seen_order)
    assert decoded.to_bytes() == raw
    # Both go on alike: the same facts and the same bytes after more events.
    outs = []
    for state in (st, decoded):
        out = []
        for n in range(3):
            ev = email(f"late{n}", t + timedelta(minutes=n), IN, thread=f"x{n}")
            state, facts = engine.apply(state, ev)
            out += facts
        state, facts = engine.advance(state, t + timedelta(days=2))
        outs.append((out + facts, state.to_bytes()))
    assert outs[0] == outs[1]
    assert outs[0][0]  # the events did something (obligations opened, then breached)


def test_a_decoded_state_shares_nothing_with_the_state_written() -> None:
    engine, st, t = _busy(600)
    raw = st.to_bytes()
    first = ClientState.from_bytes(raw)
    st, _ = engine.apply(st, email("after", t, Direction.INBOUND, thread="t9"))
    assert "after" in st.seen
    assert "after" not in first.seen
    first.seen.add("mutated")
    first.answered.clear()
    second = ClientState.from_bytes(raw)
    assert "mutated" not in second.seen
    assert second.answered != {}
    assert second.to_bytes() == raw
