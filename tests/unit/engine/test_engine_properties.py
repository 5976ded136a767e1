"""Property tests: arrival order within lateness, duplicates and re-runs never change facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core import Engine
from engine.state import event_key
from schemas.events import CallOutcome, Channel, Flag, Kind
from schemas.facts import Fact, FactKind
from schemas.policies import BusinessDuration, SlaPolicy
from tests.unit.engine.builders import (
    IN,
    OUT,
    Event,
    arrivals_within,
    call,
    email,
    live,
    other,
    policy_change,
    run,
)

pytestmark = pytest.mark.unit

LATENESS = timedelta(minutes=10)
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday morning
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
FAST = SlaPolicy(policy_id="fast", version=2, first_response=BusinessDuration(minutes=90))


def _event(i: int, template: int, client: str, thread: int, t: datetime) -> Event:
    eid = f"e{i}"
    th = f"t{thread}"
    held = {Flag.HELD, Flag.CLIENT_ATTENDEE}
    match template:
        case 0 | 1:
            return email(eid, t, IN, client=client, thread=th)
        case 2 | 3:
            return email(eid, t, OUT, client=client, thread=th)
        case 4:
            return call(eid, t, IN, CallOutcome.MISSED, wait=15, client=client)
        case 5:
            return call(eid, t, OUT, CallOutcome.ANSWERED, duration=90, client=client)
        case 6:
            return call(eid, t, IN, CallOutcome.ANSWERED, wait=8, duration=40, client=client)
        case 7:
            return other(
                eid, t, Kind.MEETING, OUT, channel=Channel.MEETING, flags=held, client=client
            )
        case 8:
            return other(
                eid, t, Kind.NO_REPLY_NEEDED, IN, channel=Channel.EMAIL, client=client, thread=th
            )
        case 9:
            return email(eid, t, IN, client=client, thread=th, flags={Flag.AUTO_REPLY})
        case _:
            return policy_change(eid, t.isoformat(), FAST, client=client)


@st.composite
def logs(draw: st.DrawFn) -> list[Event]:
    """A few days of two clients' interactions, with ties in event time on purpose."""
    n = draw(st.integers(min_value=1, max_value=30))
    events: list[Event] = []
    for i in range(n):
        # Bursts around a few anchors (opening, cutoff, closing, night) over three days, so
        # that events fall within the lateness of each other, tie, and straddle deadlines.
        day = draw(st.integers(min_value=0, max_value=2))
        anchor = draw(st.sampled_from([60, 120, 415, 590, 1200]))  # minutes after 08:00
        minute = day * 24 * 60 + anchor + draw(st.integers(min_value=0, max_value=25))
        template = draw(st.integers(min_value=0, max_value=10))
        client = draw(st.sampled_from(["c1", "c2"]))
        thread = draw(st.integers(min_value=0, max_value=2))
        events.append(_event(i, template, client, thread, START + timedelta(minutes=minute)))
    return events


def _end(events: list[Event]) -> datetime:
    return max(ev.occurred_at for ev in events) + timedelta(days=20)


def _in_order(events: list[Event]) -> list[Event]:
    return sorted(events, key=event_key)


def _engine() -> Engine:
    return Engine(allowed_lateness=LATENESS)


@SETTINGS
@given(events=logs(), data=st.data())
def test_any_arrival_order_within_lateness_gives_in_order_facts(
    events: list[Event], data: st.DataObject
) -> None:
    # Each event is delayed by less than the allowed lateness; arrival order follows.
    arrivals = arrivals_within(data, events, LATENESS)
    end = _end(events)
    expected = live(_in_order(events), _engine(), end)
    assert live(arrivals, _engine(), end) == expected
    # And the batch replay agrees client by client.
    replayed = run(events, _engine(), until=end)
    for client, facts in expected.items():
        assert [f for f in replayed if f.client_id == client] == facts


@SETTINGS
@given(events=logs(), data=st.data())
def test_duplicating_any_subset_of_events_changes_nothing(
    events: list[Event], data: st.DataObject
) -> None:
    ordered = _in_order(events)
    arrivals = list(ordered)
    chosen = data.draw(st.lists(st.sampled_from(ordered), max_size=len(ordered)))
    for ev in chosen:
        # A duplicate may show up any time after the original (even days later).
        first = arrivals.index(ev)
        arrivals.insert(data.draw(st.integers(min_value=first + 1, max_value=len(arrivals))), ev)
    end = _end(events)
    assert live(arrivals, _engine(), end) == live(ordered, _engine(), end)
    assert run(arrivals, _engine(), until=end) == run(ordered, _engine(), until=end)


@SETTINGS
@given(events=logs())
def test_replaying_twice_gives_identical_facts(events: list[Event]) -> None:
    end = _end(events)
    engine = _engine()
    first = run(events, engine, until=end)
    assert run(events, engine, until=end) == first  # same engine (warm caches)
    assert (
        run(list(reversed(events)), _engine(), until=end) == first
    )  # fresh engine, any input order
    ids = [f.fact_id for f in first]
    assert len(ids) == len(set(ids))  # fact ids identify facts
    _check_invariants(first)


def _check_invariants(facts: list[Fact]) -> None:
    """Every obligation is opened once and closed at most once; timers come after opening."""
    opened: dict[str, Fact] = {}
    closed: set[str] = set()
    for f in facts:
        ob = f.obligation_id
        if f.kind is FactKind.OBLIGATION_OPENED:
            assert ob is not None
            assert ob not in opened
            opened[ob] = f
        elif f.kind in (FactKind.FULFILLED, FactKind.WAIVED):
            assert ob in opened
            assert ob not in closed
            closed.add(ob)
        elif f.kind in (FactKind.WARNING, FactKind.BREACHED):
            assert ob in opened
            assert ob not in closed
            assert f.at >= opened[ob].at
