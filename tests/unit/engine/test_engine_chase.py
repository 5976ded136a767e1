"""Chases (issue 19 item 1): each kind of chase and each non-chase, one scenario each."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.chase import ChaseKind, chase_kind, deadline_passed, is_chase_retraction
from engine.core import Engine
from engine.state import ClientState
from schemas.events import CallOutcome, Channel, Flag, Kind
from schemas.facts import FactKind
from tests.unit.engine.builders import (
    IN,
    OUT,
    Event,
    at,
    call,
    email,
    live,
    of_kind,
    only,
    other,
    run,
)

pytestmark = pytest.mark.unit

TUE = "2026-03-03"  # an ordinary Tuesday; default policy: opened before 15:00 -> due 18:00


def _engine(*, chase_window: timedelta | None) -> Engine:
    return Engine(allowed_lateness=timedelta(0), chase_window=chase_window)


def test_client_writing_again_in_the_conversation_chases_its_obligation() -> None:
    facts = run([email("q", f"{TUE}T10:00", IN), email("again", f"{TUE}T12:30", IN)])
    opened = only(facts, FactKind.OBLIGATION_OPENED)  # the clock is not restarted
    chased = only(facts, FactKind.CHASED)
    assert chase_kind(chased) is ChaseKind.SAME_CONVERSATION
    assert chased.obligation_id == opened.obligation_id
    assert chased.source_event_id == "again"
    assert chased.at == at(f"{TUE}T12:30")
    assert chased.channel is Channel.EMAIL
    assert chased.calendar_seconds == chased.business_seconds == 2.5 * 3600
    assert chased.target_business_seconds == 8 * 3600
    assert chased.deadline == at(f"{TUE}T18:00")
    assert not deadline_passed(chased)
    assert chased.overage_business_seconds is None


def test_waiting_time_in_business_and_calendar_time_and_deadline_passed() -> None:
    # Opened Tuesday 16:00 (after the cutoff): due Wednesday 10:00. Chased Wednesday 11:00.
    facts = run([email("q", f"{TUE}T16:00", IN), email("again", "2026-03-04T11:00", IN)])
    chased = only(facts, FactKind.CHASED)
    assert chased.calendar_seconds == 19 * 3600
    assert chased.business_seconds == 4 * 3600  # 16-18 Tuesday, 09-11 Wednesday
    assert deadline_passed(chased)
    assert chased.overage_calendar_seconds == 3600
    assert chased.overage_business_seconds == 3600
    assert "had passed" in (chased.reason or "")


def test_a_missed_call_chases_the_oldest_open_obligation() -> None:
    facts = run(
        [
            email("q1", f"{TUE}T09:30", IN, thread="t1"),
            email("q2", f"{TUE}T10:00", IN, thread="t2"),
            call("ring", f"{TUE}T11:00", IN, CallOutcome.MISSED, wait=20),
        ],
        _engine(chase_window=None),  # q2 alone is no chase
    )
    opened = of_kind(facts, FactKind.OBLIGATION_OPENED)
    first = next(f for f in opened if f.source_event_id == "q1")
    chased = only(facts, FactKind.CHASED)
    assert chase_kind(chased) is ChaseKind.CALL
    assert chased.obligation_id == first.obligation_id
    assert chased.channel is Channel.PHONE
    assert chased.call_outcome is CallOutcome.MISSED
    assert chased.calendar_seconds == 1.5 * 3600
    # The missed call still opens its own callback obligation.
    assert len(of_kind(facts, FactKind.OBLIGATION_OPENED)) == 3


def test_an_answered_inbound_call_is_a_chase_too() -> None:
    facts = run(
        [
            email("q", f"{TUE}T10:00", IN),
            call("ring", f"{TUE}T10:45", IN, CallOutcome.ANSWERED, wait=5, duration=60),
        ]
    )
    chased = only(facts, FactKind.CHASED)
    assert chase_kind(chased) is ChaseKind.CALL
    assert chased.call_outcome is CallOutcome.ANSWERED


def test_a_voicemail_chases() -> None:
    facts = run(
        [
            email("q", f"{TUE}T10:00", IN),
            other("vm", f"{TUE}T13:00", Kind.VOICEMAIL, IN, channel=Channel.PHONE, thread=None),
        ]
    )
    assert chase_kind(only(facts, FactKind.CHASED)) is ChaseKind.VOICEMAIL


def test_a_new_conversation_within_the_window_chases_and_opens_its_own_obligation() -> None:
    facts = run(
        [
            email("q", f"{TUE}T10:00", IN, thread="t1"),
            email("new", f"{TUE}T15:00", IN, thread="t2"),
        ],
        _engine(chase_window=timedelta(hours=6)),
    )
    chased = only(facts, FactKind.CHASED)
    assert chase_kind(chased) is ChaseKind.NEW_CONVERSATION
    assert chased.thread_key == "t1"  # the obligation chased, not the new conversation
    assert len(of_kind(facts, FactKind.OBLIGATION_OPENED)) == 2


def test_a_new_conversation_outside_the_window_or_with_the_window_off_is_no_chase() -> None:
    events = [
        email("q", f"{TUE}T10:00", IN, thread="t1"),
        email("new", f"{TUE}T17:00", IN, thread="t2"),
    ]
    assert not of_kind(run(events, _engine(chase_window=timedelta(hours=6))), FactKind.CHASED)
    assert not of_kind(run(events, _engine(chase_window=None)), FactKind.CHASED)
    assert of_kind(run(events, _engine(chase_window=timedelta(hours=8))), FactKind.CHASED)


def test_an_auto_reply_is_never_a_chase() -> None:
    facts = run(
        [
            email("q", f"{TUE}T10:00", IN),
            email("ooo", f"{TUE}T10:01", IN, flags={Flag.AUTO_REPLY}),
            email("ooo2", f"{TUE}T11:00", IN, thread="t9", flags={Flag.AUTO_REPLY}),
        ]
    )
    assert not of_kind(facts, FactKind.CHASED)


def test_a_mailing_list_repost_is_never_a_chase() -> None:
    lst = {Flag.MAILING_LIST}
    facts = run(
        [
            email("q", f"{TUE}T10:00", IN, flags=lst),
            email("q-copy", f"{TUE}T10:00", IN, flags=lst),  # the list's copy of the question
            email("again", f"{TUE}T12:00", IN, flags=lst),  # a real chase, through the list
            email("again-copy", f"{TUE}T12:00", IN, flags=lst),  # and the list's copy of it
        ]
    )
    chased = only(facts, FactKind.CHASED)
    assert chased.source_event_id == "again"  # a list post is a real message, once


def test_our_own_follow_up_is_no_chase_and_a_client_answer_after_ours_opens_a_follow_up() -> None:
    facts = run(
        [
            email("q", f"{TUE}T10:00", IN),
            email("ours", f"{TUE}T11:00", OUT),
            email("ours-again", f"{TUE}T11:30", OUT),  # our own follow-up
            email("thanks", f"{TUE}T12:00", IN),  # the client answers us: not a chase
        ]
    )
    assert not of_kind(facts, FactKind.CHASED)
    assert len(of_kind(facts, FactKind.OBLIGATION_OPENED)) == 2


def test_an_inbound_at_the_opening_instant_is_no_chase() -> None:
    facts = run([email("a", f"{TUE}T10:00", IN), email("b", f"{TUE}T10:00", IN)])
    assert not of_kind(facts, FactKind.CHASED)


def test_each_chase_is_one_fact_and_a_replay_gives_the_same_ids() -> None:
    events = [
        email("q", f"{TUE}T10:00", IN),
        email("again", f"{TUE}T11:00", IN),
        email("again2", f"{TUE}T12:00", IN),
    ]
    first = of_kind(run(events), FactKind.CHASED)
    assert [f.source_event_id for f in first] == ["again", "again2"]
    assert of_kind(run(list(reversed(events))), FactKind.CHASED) == first


def test_a_late_reply_dated_before_a_chase_retracts_it() -> None:
    engine = Engine(allowed_lateness=timedelta(minutes=5))
    arrivals = [
        email("q", f"{TUE}T10:00", IN),
        email("again", f"{TUE}T12:00", IN),
        email("later", f"{TUE}T13:00", IN, thread="t3"),  # moves the watermark on
        email("ours", f"{TUE}T11:00", OUT, recorded=at(f"{TUE}T13:05")),  # two hours late
    ]
    facts = live(arrivals, engine, at(f"{TUE}T20:00"))["c1"]
    chased = only(facts, FactKind.CHASED)
    retraction = [f for f in facts if is_chase_retraction(f)]
    assert [f.retracts for f in retraction] == [chased.fact_id]
    assert retraction[0].at == at(f"{TUE}T11:00")


def test_chases_survive_a_state_roundtrip() -> None:
    engine = Engine(allowed_lateness=timedelta(minutes=5))
    st, _ = engine.apply(None, email("q", f"{TUE}T10:00", IN))
    st, _ = engine.apply(st, email("again", f"{TUE}T12:00", IN))
    st, out = engine.advance(st, at(f"{TUE}T12:10"))
    assert len(of_kind(out, FactKind.CHASED)) == 1
    loaded = ClientState.from_bytes(st.to_bytes())
    assert [ob.chases for ob in loaded.open.values()] == [ob.chases for ob in st.open.values()]
    assert any(ob.chases for ob in loaded.open.values())


# -- suggested target (issue 19 item 3) ----------------------------------------------------------


def _impatient_week() -> list[Event]:
    """Monday to Thursday: a question at 10:00, asked again after 1 h, 1 h 40 m, 2 h, 3 h."""
    days = ["2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"]
    waits = [60, 100, 120, 180]
    out: list[Event] = []
    for day, wait in zip(days, waits, strict=True):
        out.append(email(f"q-{day}", f"{day}T10:00", IN, thread=f"t-{day}"))
        t = at(f"{day}T10:00") + timedelta(minutes=wait)
        out.append(email(f"again-{day}", t, IN, thread=f"t-{day}"))
        out.append(email(f"ours-{day}", f"{day}T17:00", OUT, thread=f"t-{day}"))
    return out


def test_chases_well_before_our_deadline_suggest_a_faster_target_once() -> None:
    facts = run(_impatient_week(), _engine(chase_window=None))
    suggested = of_kind(facts, FactKind.TARGET_SUGGESTED)
    # After the third chase (1 h, 1 h 40 m, 2 h; median 1 h 40 m < half of 8 h): the fastest
    # 10% of waits is 1 h, so a one-hour target; the fourth chase keeps it (no new fact).
    assert len(suggested) == 1
    fact = suggested[0]
    assert fact.at == at("2026-03-04T12:00")
    assert fact.target_business_seconds == 3600
    assert fact.business_seconds == 100 * 60
    assert "60 business minutes" in (fact.reason or "")
    assert fact.obligation_id is None  # about the client, not one obligation


def test_chases_after_our_deadline_or_too_few_suggest_nothing() -> None:
    few = _impatient_week()[:6]  # two chases
    assert not of_kind(run(few, _engine(chase_window=None)), FactKind.TARGET_SUGGESTED)
    late = [
        email("q1", f"{TUE}T16:00", IN, thread="a"),  # due Wednesday 10:00
        email("a1", "2026-03-04T11:00", IN, thread="a"),
        email("a2", "2026-03-04T12:00", IN, thread="a"),
        email("a3", "2026-03-04T13:00", IN, thread="a"),
    ]
    facts = run(late, _engine(chase_window=None))
    assert len(of_kind(facts, FactKind.CHASED)) == 3
    assert not of_kind(facts, FactKind.TARGET_SUGGESTED)
