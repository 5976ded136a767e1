"""Ties at one instant: an answer fulfils only what was opened strictly before it (DESIGN §3).

Events at the same instant are processed in (recorded_at, event_id) order; that order must not
decide whether an inbound is answered.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core import Engine
from schemas.events import CallOutcome, Channel, Flag, Kind
from schemas.facts import Fact, FactKind
from tests.unit.engine.builders import IN, OUT, Event, call, email, live, of_kind, other, run

pytestmark = pytest.mark.unit

T = "2026-03-03T10:00"  # a Tuesday, in business hours
LATER = "2026-03-03T11:00"
END = "2026-03-04T18:00"


def _touches(eid: str, when: str) -> list[Event]:
    """Every kind of answer at ``when``: cross-channel call, meeting, visit, thread reply."""
    held = {Flag.HELD, Flag.CLIENT_ATTENDEE}
    return [
        call(eid, when, OUT, CallOutcome.ANSWERED, duration=120, thread=None),
        other(eid, when, Kind.MEETING, OUT, channel=Channel.MEETING, flags=held, thread=None),
        other(eid, when, Kind.VISIT, OUT, channel=Channel.VISIT, thread=None),
        email(eid, when, OUT),  # same thread t1 as the inbound
    ]


@pytest.mark.parametrize("touch", _touches("touch", T), ids=lambda e: e.kind.value)
@pytest.mark.parametrize("touch_id", ["a-first", "z-last"])
def test_a_touch_at_the_inbounds_instant_does_not_fulfil_it(touch: Event, touch_id: str) -> None:
    inbound = email("m-inbound", T, IN)
    touch = touch.model_copy(update={"event_id": touch_id})
    facts = run([inbound, touch], until=END)
    # Whichever id sorts first, the inbound stays open and is breached.
    assert of_kind(facts, FactKind.FULFILLED) == []
    assert len(of_kind(facts, FactKind.BREACHED)) == 1


@pytest.mark.parametrize("touch", _touches("touch", LATER), ids=lambda e: e.kind.value)
def test_a_touch_after_the_inbound_fulfils_it(touch: Event) -> None:
    facts = run([email("m-inbound", T, IN), touch], until=END)
    assert len(of_kind(facts, FactKind.FULFILLED)) == 1
    assert of_kind(facts, FactKind.BREACHED) == []


@pytest.mark.parametrize("callback_id", ["a-first", "z-last"])
def test_a_call_back_at_the_missed_calls_instant_does_not_answer_it(callback_id: str) -> None:
    missed = call("m-missed", T, IN, CallOutcome.MISSED, wait=20)
    back = call(callback_id, T, OUT, CallOutcome.ANSWERED, duration=10)
    facts = run([missed, back], until=END)
    assert of_kind(facts, FactKind.FULFILLED) == []
    assert len(of_kind(facts, FactKind.BREACHED)) == 1


def _outcomes(facts: list[Fact]) -> list[tuple[str, str, str | None]]:
    """What happened to which opening event, independent of the answering event's id."""
    opened = {
        f.obligation_id: f.source_event_id for f in of_kind(facts, FactKind.OBLIGATION_OPENED)
    }
    return sorted(
        (f.kind.value, opened[f.obligation_id or ""] or "", f.outcome and f.outcome.value)
        for f in facts
        if f.kind in (FactKind.FULFILLED, FactKind.BREACHED)
    )


_BASE = datetime(2026, 3, 3, 9, 30, tzinfo=UTC)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    kinds=st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=4),
    minutes=st.lists(st.integers(min_value=0, max_value=3), min_size=5, max_size=5),
    ids=st.permutations(list("abcdefgh")),
    recorded=st.permutations(range(8)),
    live_order=st.booleans(),
)
def test_outcomes_are_independent_of_event_id_and_recorded_order(
    kinds: list[int], minutes: list[int], ids: list[str], recorded: list[int], live_order: bool
) -> None:
    """Inbounds and answers on a few shared instants: renaming the events (which reorders the
    ties) and shuffling recorded_at changes no outcome, in replay and in live arrival."""
    inbound_times = [_BASE + timedelta(minutes=m) for m in minutes[:2]]
    answer_times = [_BASE + timedelta(minutes=m) for m in minutes[2:]]
    # Two threads (one obligation each); the thread replies answer t1.
    events: list[Event] = [
        email(f"in{i}", t, IN, thread=f"t{i + 1}") for i, t in enumerate(inbound_times)
    ]
    for i, kind in enumerate(kinds):
        when = answer_times[i % len(answer_times)].isoformat()
        events.append(_touches(f"ans{i}", when)[kind])

    def rename(order: list[str], rec: list[int]) -> list[Event]:
        out: list[Event] = []
        for i, ev in enumerate(events):
            # Inbounds keep a recognisable prefix; the tie-break letter comes first.
            eid = f"{order[i]}-{ev.event_id}"
            shift = timedelta(seconds=rec[i])
            out.append(
                ev.model_copy(update={"event_id": eid, "recorded_at": ev.occurred_at + shift})
            )
        return out

    def outcome(evs: list[Event]) -> list[tuple[str, str, str | None]]:
        if live_order:
            engine = Engine(allowed_lateness=timedelta(minutes=10))
            facts = live(evs, engine, datetime(2026, 3, 4, 18, tzinfo=UTC)).get("c1", [])
        else:
            facts = run(evs, until=END)
        return sorted((k, src.split("-", 1)[1], o) for k, src, o in _outcomes(facts))

    assert outcome(rename(ids, recorded)) == outcome(rename(list("abcdefgh"), list(range(8))))
