"""Drivers for engine tests (in-order replay, live arrival) and fact pickers; the event and policy
builders live in ``tests.builders`` and are re-exported here for the engine tests."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from hypothesis import strategies as st

from engine.core import Engine
from engine.replay import replay
from engine.state import ClientState
from schemas.events import ClientPolicyChanged, InteractionEvent
from schemas.facts import Fact, FactKind
from tests.builders import IN, OUT, UTC_WEEK, at, call, email, other, policy_change

__all__ = [
    "IN",
    "OUT",
    "UTC_WEEK",
    "Event",
    "at",
    "call",
    "email",
    "live",
    "of_kind",
    "only",
    "other",
    "policy_change",
    "run",
]

Event = InteractionEvent | ClientPolicyChanged


def run(
    events: Iterable[Event], engine: Engine | None = None, until: str | datetime | None = None
) -> list[Fact]:
    """Facts of an in-order replay (default engine: zero lateness, UTC Mon-Fri 09-18)."""
    end = None if until is None else at(until)
    return list(replay(events, engine or Engine(allowed_lateness=timedelta(0)), watermark_end=end))


def live(
    arrivals: Iterable[Event], engine: Engine, end: datetime, *, roundtrip: bool = False
) -> dict[str, list[Fact]]:
    """Drive the engine like the live adapter: events in arrival order, watermark = max event
    time seen, then settle at ``end``. Returns facts per client, in emission order.
    ``roundtrip`` serialises every state after each step (what a RocksDB table does)."""
    states: dict[str, ClientState] = {}
    facts: dict[str, list[Fact]] = {}
    watermark: datetime | None = None
    for ev in arrivals:
        client = ev.client_id or ""
        st, out = engine.apply(states.get(client), ev)
        states[client] = st
        facts.setdefault(client, []).extend(out)
        watermark = ev.occurred_at if watermark is None else max(watermark, ev.occurred_at)
        for key, state in list(states.items()):
            state, out = engine.advance(state, watermark)
            facts.setdefault(key, []).extend(out)
            states[key] = ClientState.from_bytes(state.to_bytes()) if roundtrip else state
    for key, state in states.items():
        facts.setdefault(key, []).extend(engine.settle(state, end)[1])
    return {k: v for k, v in facts.items() if v}


def of_kind(facts: Iterable[Fact], kind: FactKind) -> list[Fact]:
    """The facts of one kind, in order."""
    return [f for f in facts if f.kind is kind]


def only(facts: Iterable[Fact], kind: FactKind) -> Fact:
    """The single fact of ``kind`` (fails when there are zero or several)."""
    found = of_kind(facts, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}: {found}"
    return found[0]


def arrivals_within(data: st.DataObject, events: list[Event], lateness: timedelta) -> list[Event]:
    """``events`` in an arrival order drawn by hypothesis: each delayed by less than
    ``lateness`` (ties keep the log's order), as a live feed within the allowed lateness."""
    delays = data.draw(
        st.lists(
            st.integers(min_value=0, max_value=int(lateness.total_seconds()) - 1),
            min_size=len(events),
            max_size=len(events),
        )
    )
    return [
        ev
        for _, _, ev in sorted(
            (ev.occurred_at + timedelta(seconds=d), i, ev)
            for i, (ev, d) in enumerate(zip(events, delays, strict=True))
        )
    ]
