"""Event time, timers, lateness, duplicates, corrections, business-time arithmetic in facts."""

from __future__ import annotations

from datetime import time, timedelta

import pytest

from engine.alerts import alert_for
from engine.core import Engine
from engine.state import ClientState
from schemas.alerts import AlertLevel
from schemas.calendars import BusinessCalendar, TimeInterval
from schemas.facts import Fact, FactKind, Outcome
from schemas.policies import BusinessDuration, SlaPolicy
from shinrai.errors import EventTooOld
from tests.unit.engine.builders import (
    IN,
    OUT,
    at,
    email,
    live,
    of_kind,
    only,
    policy_change,
    run,
)

pytestmark = pytest.mark.unit

TUE = "2026-03-03"
FOUR_HOURS = SlaPolicy(policy_id="4h", first_response=BusinessDuration(minutes=240))


def test_duplicate_event_changes_nothing() -> None:
    log = [email("in", f"{TUE}T10:00", IN), email("out", f"{TUE}T10:30", OUT)]
    once = run(log)
    assert run([log[0], log[0], log[1], log[1], log[0]]) == once
    engine = Engine(allowed_lateness=timedelta(minutes=5))
    end = at(f"{TUE}T23:00")
    # A duplicate that turns up long after the original (beyond lateness) is still ignored.
    assert (
        live([*log, email("x", f"{TUE}T12:00", OUT, thread="t2"), log[0]], engine, end)["c1"]
        == live([*log, email("x", f"{TUE}T12:00", OUT, thread="t2")], engine, end)["c1"]
    )


def test_reply_arriving_before_its_inbound_within_lateness_equals_in_order() -> None:
    inbound = email("in", f"{TUE}T10:00", IN)
    reply = email("out", f"{TUE}T10:03", OUT)
    engine = Engine(allowed_lateness=timedelta(minutes=5))
    end = at(f"{TUE}T23:00")
    swapped = live([reply, inbound], engine, end)["c1"]
    assert swapped == live([inbound, reply], engine, end)["c1"]
    done = only(swapped, FactKind.FULFILLED)
    assert done.outcome is Outcome.MET
    assert done.business_seconds == 180


def test_facts_wait_for_the_lateness_but_carry_exact_instants() -> None:
    engine = Engine(allowed_lateness=timedelta(minutes=5), default_policy=FOUR_HOURS)
    st, out = engine.apply(None, email("in", f"{TUE}T10:00", IN))
    assert out == []
    assert engine.next_due(st) == at(f"{TUE}T10:05")  # the buffered event, plus the lateness
    st, out = engine.advance(st, at(f"{TUE}T10:04:59"))
    assert out == []
    st, out = engine.advance(st, at(f"{TUE}T10:05"))
    assert [f.kind for f in out] == [FactKind.OBLIGATION_OPENED]
    assert engine.next_due(st) == at(f"{TUE}T12:05")  # 50% warning at 12:00, plus lateness
    st, out = engine.advance(st, at(f"{TUE}T12:04"))
    assert out == []
    st, out = engine.advance(st, at(f"{TUE}T15:00"))
    assert [(f.kind, f.at) for f in out] == [
        (FactKind.WARNING, at(f"{TUE}T12:00")),
        (FactKind.WARNING, at(f"{TUE}T13:00")),
        (FactKind.WARNING, at(f"{TUE}T13:36")),
        (FactKind.BREACHED, at(f"{TUE}T14:00")),
    ]
    assert engine.next_due(st) is not None  # the silence cadence is still pending


def test_warnings_fire_at_exact_fraction_instants_and_only_while_open() -> None:
    engine = Engine(allowed_lateness=timedelta(0), default_policy=FOUR_HOURS)
    facts = run(
        [email("in", f"{TUE}T10:00", IN), email("out", f"{TUE}T13:10", OUT)],
        engine,
        until=f"{TUE}T23:00",
    )
    warnings = of_kind(facts, FactKind.WARNING)
    assert [(w.warning_fraction, w.at) for w in warnings] == [
        (0.5, at(f"{TUE}T12:00")),
        (0.75, at(f"{TUE}T13:00")),
    ]
    assert not of_kind(facts, FactKind.BREACHED)
    assert len({w.fact_id for w in warnings}) == 2


def test_reply_exactly_at_the_deadline_is_met() -> None:
    engine = Engine(allowed_lateness=timedelta(0), default_policy=FOUR_HOURS)
    facts = run([email("in", f"{TUE}T10:00", IN), email("out", f"{TUE}T14:00", OUT)], engine)
    assert only(facts, FactKind.FULFILLED).outcome is Outcome.MET
    assert not of_kind(facts, FactKind.BREACHED)


def test_breach_fires_at_deadline_then_late_reply_is_met_late_with_overage() -> None:
    engine = Engine(allowed_lateness=timedelta(0), default_policy=FOUR_HOURS)
    # Nothing else happens: the breach is a timer and fires anyway.
    breach = only(
        run([email("in", f"{TUE}T16:00", IN)], engine, until="2026-03-05"), FactKind.BREACHED
    )
    # 2 business hours on Tuesday (16-18), 2 more on Wednesday from 09:00.
    assert breach.at == breach.deadline == at("2026-03-04T11:00")
    late_reply = email("out", "2026-03-04T12:30", OUT)
    facts = run([email("in", f"{TUE}T16:00", IN), late_reply], engine)
    assert only(facts, FactKind.BREACHED) == breach
    done = only(facts, FactKind.FULFILLED)
    assert done.outcome is Outcome.MET_LATE
    assert done.overage_business_seconds == 90 * 60
    assert done.overage_calendar_seconds == 90 * 60
    assert done.business_seconds == (4 * 60 + 90) * 60
    assert done.calendar_seconds == (20 * 60 + 30) * 60
    assert facts.index(breach) < facts.index(done)
    assert alert_for(breach) is not None


def test_reply_dated_before_deadline_arriving_after_breach_retracts_it() -> None:
    engine = Engine(allowed_lateness=timedelta(minutes=5), default_policy=FOUR_HOURS)
    st, _ = engine.apply(None, email("in", f"{TUE}T10:00", IN))
    st, fired = engine.advance(st, at(f"{TUE}T16:00"))
    breach = only(fired, FactKind.BREACHED)
    # The integration lagged: a reply sent at 13:50 is only exported now, beyond lateness.
    st, out = engine.apply(st, email("out", f"{TUE}T13:50", OUT))
    retracted = of_kind(out, FactKind.RETRACTED)
    assert breach.fact_id in {r.retracts for r in retracted}
    # The 90% warning (13:36) was true at 13:36; nothing fired after 13:50 but the breach.
    assert {r.retracts for r in retracted} == {breach.fact_id}
    done = only(out, FactKind.FULFILLED)
    assert done.outcome is Outcome.MET
    assert done.at == at(f"{TUE}T13:50")
    assert done.business_seconds == 230 * 60
    retraction = next(r for r in retracted if r.retracts == breach.fact_id)
    alert = alert_for(retraction)
    assert alert is not None
    assert alert.level is AlertLevel.RETRACTION
    assert alert.obligation_id == breach.obligation_id


def test_late_reply_after_warnings_retracts_the_warnings_it_precedes() -> None:
    engine = Engine(allowed_lateness=timedelta(0), default_policy=FOUR_HOURS)
    st, _ = engine.apply(None, email("in", f"{TUE}T10:00", IN))
    st, fired = engine.advance(st, at(f"{TUE}T13:40"))
    assert [w.warning_fraction for w in of_kind(fired, FactKind.WARNING)] == [0.5, 0.75, 0.9]
    st, out = engine.apply(st, email("out", f"{TUE}T12:30", OUT))
    retracted = {r.warning_fraction for r in of_kind(out, FactKind.RETRACTED)}
    assert retracted == {0.75, 0.9}  # the 50% warning at 12:00 did hold at 12:00
    assert all(alert_for(r) is None for r in of_kind(out, FactKind.RETRACTED))


def test_split_shift_with_lunch_break() -> None:
    split = BusinessCalendar(
        calendar_id="split",
        timezone="Europe/Paris",
        weekly_hours={
            d: (
                TimeInterval(start=time(9), end=time(12)),
                TimeInterval(start=time(13), end=time(18)),
            )
            for d in range(5)
        },
    )
    policy = SlaPolicy(policy_id="2h", first_response=BusinessDuration(minutes=120))
    engine = Engine(allowed_lateness=timedelta(0), default_policy=policy, default_calendar=split)
    facts = run(
        [email("in", f"{TUE}T11:00+01:00", IN), email("out", f"{TUE}T13:30+01:00", OUT)], engine
    )
    opened = only(facts, FactKind.OBLIGATION_OPENED)
    assert opened.deadline == at(f"{TUE}T14:00+01:00")  # 11-12, lunch, 13-14
    done = only(facts, FactKind.FULFILLED)
    assert done.business_seconds == 90 * 60  # lunch does not count
    assert done.calendar_seconds == 150 * 60
    assert done.outcome is Outcome.MET


def test_business_deadline_across_spring_forward_is_exact() -> None:
    new_york = BusinessCalendar(calendar_id="ny", timezone="America/New_York")
    policy = SlaPolicy(policy_id="2h", first_response=BusinessDuration(minutes=120))
    engine = Engine(allowed_lateness=timedelta(0), default_policy=policy, default_calendar=new_york)
    # Friday 17:00 EST; clocks jump on Sunday 2026-03-08; Monday opens at 09:00 EDT (13:00Z).
    facts = run(
        [email("in", "2026-03-06T17:00-05:00", IN), email("out", "2026-03-09T09:30-04:00", OUT)],
        engine,
    )
    assert only(facts, FactKind.OBLIGATION_OPENED).deadline == at("2026-03-09T14:00Z")
    done = only(facts, FactKind.FULFILLED)
    assert done.business_seconds == 90 * 60
    assert done.calendar_seconds == (2 * 24 + 15) * 3600 + 30 * 60  # 63.5 h, not 64.5 h


def test_state_survives_serialisation_between_every_step() -> None:
    engine = Engine(allowed_lateness=timedelta(minutes=5), default_policy=FOUR_HOURS)
    log = [
        email("a", f"{TUE}T10:00", IN),
        email("b", f"{TUE}T10:02", IN, thread="t2"),
        email("r", f"{TUE}T11:00", OUT),
        email("c", f"{TUE}T11:30", IN),
    ]
    end = at("2026-03-20T00:00")
    plain = live(log, engine, end)
    assert live(log, engine, end, roundtrip=True) == plain
    assert of_kind(plain["c1"], FactKind.SILENCE)


def test_state_bytes_are_small_and_round_trip() -> None:
    engine = Engine(allowed_lateness=timedelta(minutes=5))
    st, _ = engine.apply(None, email("a", f"{TUE}T10:00", IN))
    st, _ = engine.advance(st, at(f"{TUE}T10:30"))
    st, _ = engine.apply(st, email("b", f"{TUE}T10:29", IN, thread="t2"))  # buffered
    raw = st.to_bytes()
    again = ClientState.from_bytes(raw)
    assert again.to_bytes() == raw
    assert len(again.buffer) == 1
    assert set(again.open) == {"t1"}
    assert len(raw) < 4096


def test_event_older_than_the_duplicate_window_is_refused_with_the_reason() -> None:
    engine = Engine(allowed_lateness=timedelta(0), duplicate_window=timedelta(days=1))
    st, _ = engine.apply(None, email("a", f"{TUE}T10:00", IN))
    st, _ = engine.advance(st, at("2026-03-10T10:00"))
    before = st.to_bytes()
    with pytest.raises(EventTooOld, match=r"client c1, event old: occurred at 2026-03-05") as exc:
        engine.apply(st, email("old", "2026-03-05T10:00", IN, thread="t9"))
    assert (exc.value.client_id, exc.value.event_id) == ("c1", "old")
    assert st.too_late == 1
    assert "t9" not in st.open
    again = ClientState.from_bytes(st.to_bytes())
    again.too_late = 0
    assert again.to_bytes() == before  # nothing else about the client changed


def test_policy_change_older_than_the_duplicate_window_applies_from_the_horizon() -> None:
    engine = Engine(allowed_lateness=timedelta(0), duplicate_window=timedelta(days=1))
    st, _ = engine.apply(None, email("a", f"{TUE}T10:00", IN))
    st, _ = engine.advance(st, at(f"{TUE}T10:30"))
    st, _ = engine.advance(st, at("2026-03-10T10:00"))  # breached long ago under the default
    st, out = engine.apply(st, policy_change("p", "2026-01-01T00:00", FOUR_HOURS))
    assert st.policy == FOUR_HOURS
    assert out == []  # the only obligation is breached: its breach stands, nothing is recomputed
    st, _ = engine.apply(st, email("b", "2026-03-10T11:00", IN, thread="t2"))
    st, out = engine.advance(st, at("2026-03-10T11:00"))
    opened = only(out, FactKind.OBLIGATION_OPENED)
    assert opened.policy_id == "4h"


def test_a_client_without_interactions_is_never_advanced() -> None:
    # The directory's first entry is announced (stamped "the beginning") on a live partition
    # before the client's history is read: the history must still be processed in event time.
    engine = Engine(allowed_lateness=timedelta(minutes=5), duplicate_window=timedelta(days=7))
    st, out = engine.apply(None, policy_change("p", "1970-01-01T00:00", FOUR_HOURS))
    st, more = engine.advance(st, at("2026-06-01T00:00"))  # the wall clock, months later
    assert out == more == []
    assert st.processed_until is None
    assert engine.next_due(st) is None  # no timers for a client with no interaction
    history = [email("in", f"{TUE}T10:00", IN), email("out", f"{TUE}T10:30", OUT)]
    facts: list[Fact] = []
    for ev in history:
        st, out = engine.apply(st, ev)
        facts.extend(out)
        st, out = engine.advance(st, ev.occurred_at)
        facts.extend(out)
    facts.extend(engine.settle(st, at(f"{TUE}T23:00"))[1])
    assert st.too_late == 0
    done = only(facts, FactKind.FULFILLED)
    assert (done.outcome, done.policy_id) == (Outcome.MET, "4h")
    assert facts == run(
        [policy_change("p", "1970-01-01T00:00", FOUR_HOURS), *history],
        Engine(allowed_lateness=timedelta(minutes=5)),
        f"{TUE}T23:00",
    )
