"""Property: chases do not depend on arrival order within the allowed lateness (issue 19)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.chase import chase_kind, is_chase_retraction
from engine.core import Engine
from engine.state import event_key
from schemas.events import CallOutcome, Channel, Flag, Kind
from schemas.facts import Fact, FactKind
from tests.unit.engine.builders import (
    IN,
    OUT,
    Event,
    arrivals_within,
    call,
    email,
    live,
    other,
    run,
)

pytestmark = pytest.mark.unit

LATENESS = timedelta(minutes=15)
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday morning
SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


def _event(i: int, template: int, client: str, thread: int, t: datetime) -> Event:
    eid = f"e{i}"
    th = f"t{thread}"
    match template:
        case 0 | 1 | 2:
            return email(eid, t, IN, client=client, thread=th)
        case 3:
            return email(eid, t, IN, client=client, thread=th, flags={Flag.MAILING_LIST})
        case 4:
            return email(eid, t, IN, client=client, thread=th, flags={Flag.AUTO_REPLY})
        case 5 | 6:
            return email(eid, t, OUT, client=client, thread=th)
        case 7:
            return call(eid, t, IN, CallOutcome.MISSED, wait=30, client=client)
        case 8:
            return call(eid, t, IN, CallOutcome.ANSWERED, wait=5, duration=60, client=client)
        case 9:
            return other(eid, t, Kind.VOICEMAIL, IN, channel=Channel.PHONE, client=client)
        case _:
            return other(
                eid, t, Kind.NO_REPLY_NEEDED, OUT, channel=Channel.EMAIL, client=client, thread=th
            )


@st.composite
def logs(draw: st.DrawFn) -> list[Event]:
    """Two clients' busy days: repeats in open conversations, calls, list copies, ties."""
    n = draw(st.integers(min_value=1, max_value=30))
    events: list[Event] = []
    for i in range(n):
        day = draw(st.integers(min_value=0, max_value=1))
        minute = (
            day * 24 * 60
            + draw(st.sampled_from([0, 60, 300, 420, 600]))
            + draw(st.integers(min_value=0, max_value=30))
        )
        events.append(
            _event(
                i,
                draw(st.integers(min_value=0, max_value=10)),
                draw(st.sampled_from(["c1", "c2"])),
                draw(st.integers(min_value=0, max_value=2)),
                START + timedelta(minutes=minute),
            )
        )
    return events


def _engine() -> Engine:
    return Engine(allowed_lateness=LATENESS, chase_window=timedelta(hours=3))


def _chases(facts: list[Fact]) -> list[Fact]:
    chase_kinds = (FactKind.CHASED, FactKind.TARGET_SUGGESTED)
    return [f for f in facts if f.kind in chase_kinds or is_chase_retraction(f)]


@SETTINGS
@given(events=logs(), data=st.data())
def test_any_arrival_order_within_lateness_gives_the_same_chase_facts(
    events: list[Event], data: st.DataObject
) -> None:
    # Each event is delayed by less than the allowed lateness; arrival order follows.
    arrivals = arrivals_within(data, events, LATENESS)
    end = max(ev.occurred_at for ev in events) + timedelta(days=5)
    in_order = live(sorted(events, key=event_key), _engine(), end)
    shuffled = live(arrivals, _engine(), end)
    expected = {c: _chases(f) for c, f in in_order.items()}
    assert {c: _chases(f) for c, f in shuffled.items()} == expected
    # The batch replay (the backfill path) agrees.
    replayed = _chases(run(events, _engine(), until=end))
    by_id = sorted((f for fs in expected.values() for f in fs), key=lambda f: f.fact_id)
    assert sorted(replayed, key=lambda f: f.fact_id) == by_id
    # Within the lateness nothing is ever corrected, and every chase names its kind.
    assert not any(is_chase_retraction(f) for fs in expected.values() for f in fs)
    chased = [f for fs in expected.values() for f in fs if f.kind is FactKind.CHASED]
    assert all(chase_kind(f) is not None for f in chased)
