"""Opening and closing obligations: the DESIGN §3 rules, one scenario each."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.core import Engine
from schemas.calendars import BusinessCalendar
from schemas.events import CallOutcome, Channel, Direction, Flag, Kind
from schemas.facts import FactKind, ObligationKind, Outcome
from schemas.policies import CrossChannelRule, SlaPolicy
from tests.unit.engine.builders import (
    IN,
    OUT,
    at,
    call,
    email,
    of_kind,
    only,
    other,
    run,
)

pytestmark = pytest.mark.unit

INTERNAL = Direction.INTERNAL
TUE = "2026-03-03"  # an ordinary Tuesday


def test_in_hours_email_answered_in_30_minutes_is_met_with_1800_business_seconds() -> None:
    facts = run([email("in", f"{TUE}T10:00", IN), email("out", f"{TUE}T10:30", OUT)])
    opened = only(facts, FactKind.OBLIGATION_OPENED)
    assert opened.obligation_kind is ObligationKind.FIRST_RESPONSE
    assert opened.deadline == at(f"{TUE}T18:00")  # before 15:00: end of the business day
    assert opened.target_business_seconds == 8 * 3600
    done = only(facts, FactKind.FULFILLED)
    assert done.outcome is Outcome.MET
    assert done.business_seconds == 1800
    assert done.calendar_seconds == 1800
    assert done.obligation_id == opened.obligation_id
    assert done.overage_business_seconds is None
    assert (done.policy_id, done.policy_version) == ("default", 1)
    assert not of_kind(facts, FactKind.BREACHED)


def test_friday_after_cutoff_before_japanese_holiday_monday_is_due_tuesday_10() -> None:
    tokyo = BusinessCalendar(calendar_id="jp", timezone="Asia/Tokyo", holiday_country="JP")
    engine = Engine(allowed_lateness=timedelta(0), default_calendar=tokyo)
    # 2026-01-12 is Coming of Age Day (成人の日), a Monday public holiday in Japan.
    facts = run(
        [
            email("in", "2026-01-09T16:00+09:00", IN),
            email("out", "2026-01-13T09:50+09:00", OUT),
        ],
        engine,
    )
    opened = only(facts, FactKind.OBLIGATION_OPENED)
    assert opened.deadline == at("2026-01-13T10:00+09:00")
    done = only(facts, FactKind.FULFILLED)
    assert done.outcome is Outcome.MET
    # Friday 16:00-18:00 plus Tuesday 09:00-09:50; the weekend and the holiday do not count.
    assert done.business_seconds == 2 * 3600 + 50 * 60
    assert not of_kind(facts, FactKind.BREACHED)


def test_missed_call_opens_callback_fulfilled_by_a_short_answered_callback() -> None:
    facts = run(
        [
            call("miss", f"{TUE}T10:00", IN, CallOutcome.MISSED, wait=25),
            email("mail", f"{TUE}T10:05", IN),
            call("back", f"{TUE}T10:40", OUT, CallOutcome.ANSWERED, duration=20),
        ],
        until=f"{TUE}T23:00",
    )
    opened = of_kind(facts, FactKind.OBLIGATION_OPENED)
    assert [o.obligation_kind for o in opened] == [
        ObligationKind.CALLBACK,
        ObligationKind.FIRST_RESPONSE,
    ]
    done = only(facts, FactKind.FULFILLED)
    assert done.obligation_kind is ObligationKind.CALLBACK
    assert done.outcome is Outcome.MET
    assert done.business_seconds == 40 * 60
    assert done.fulfilled_by_channel is Channel.PHONE
    # 20 s is below the 60 s cross-channel minimum: the email stays open and breaches.
    assert only(facts, FactKind.BREACHED).obligation_kind is ObligationKind.FIRST_RESPONSE


def test_voicemail_and_callback_request_share_the_callers_thread() -> None:
    facts = run(
        [
            other("vm", f"{TUE}T10:00", Kind.VOICEMAIL, IN, channel=Channel.PHONE, thread=None),
            other(
                "req", f"{TUE}T11:00", Kind.CALLBACK_REQUEST, IN, channel=Channel.PHONE, thread=None
            ),
            call("back", f"{TUE}T12:00", OUT, CallOutcome.ANSWERED, duration=5),
        ]
    )
    opened = only(facts, FactKind.OBLIGATION_OPENED)  # the request joined the open obligation
    assert opened.source_event_id == "vm"
    assert only(facts, FactKind.FULFILLED).business_seconds == 2 * 3600  # from the oldest


def test_long_answered_call_is_a_cross_channel_answer_to_email() -> None:
    facts = run(
        [
            email("mail", f"{TUE}T10:00", IN),
            call("talk", f"{TUE}T11:00", OUT, CallOutcome.ANSWERED, duration=61, thread=None),
        ]
    )
    assert only(facts, FactKind.FULFILLED).fulfilled_by_channel is Channel.PHONE


def test_email_fulfilled_by_held_meeting_with_client_attendee() -> None:
    held = {Flag.HELD, Flag.CLIENT_ATTENDEE}
    facts = run(
        [
            email("a", f"{TUE}T10:00", IN, thread="ta"),
            email("b", f"{TUE}T10:30", IN, thread="tb"),
            other(
                "m0", f"{TUE}T11:00", Kind.MEETING, OUT, channel=Channel.MEETING, flags={Flag.HELD}
            ),
            other("m1", f"{TUE}T12:00", Kind.MEETING, OUT, channel=Channel.MEETING, flags=held),
            email("c", f"{TUE}T12:30", IN, thread="tc"),
        ],
        until=f"{TUE}T23:00",
    )
    done = of_kind(facts, FactKind.FULFILLED)
    # A meeting without a client attendee answers nothing; the held one answers both threads
    # opened before it, not the email that came after.
    assert sorted(f.thread_key or "" for f in done) == ["ta", "tb"]
    assert {f.source_event_id for f in done} == {"m1"}
    assert {f.fulfilled_by_channel for f in done} == {Channel.MEETING}
    assert only(facts, FactKind.BREACHED).thread_key == "tc"


def test_cross_channel_disabled_only_same_thread_replies_count() -> None:
    strict = SlaPolicy(policy_id="strict", cross_channel=CrossChannelRule(enabled=False))
    engine = Engine(allowed_lateness=timedelta(0), default_policy=strict)
    held = {Flag.HELD, Flag.CLIENT_ATTENDEE}
    facts = run(
        [
            email("a", f"{TUE}T10:00", IN),
            other("m1", f"{TUE}T11:00", Kind.MEETING, OUT, channel=Channel.MEETING, flags=held),
            other("v1", f"{TUE}T11:30", Kind.VISIT, OUT, channel=Channel.VISIT),
            email("r", f"{TUE}T12:00", OUT),
        ],
        engine,
    )
    assert only(facts, FactKind.FULFILLED).source_event_id == "r"


def test_reply_then_new_inbound_opens_a_follow_up() -> None:
    facts = run(
        [
            email("q1", f"{TUE}T10:00", IN),
            email("r1", f"{TUE}T10:10", OUT),
            email("q2", f"{TUE}T11:00", IN),
            email("q3", f"{TUE}T11:30", IN),  # same thread, obligation open: no new clock
            email("r2", f"{TUE}T12:00", OUT),
        ]
    )
    opened = of_kind(facts, FactKind.OBLIGATION_OPENED)
    assert [o.obligation_kind for o in opened] == [
        ObligationKind.FIRST_RESPONSE,
        ObligationKind.FOLLOW_UP,
    ]
    assert opened[0].obligation_id != opened[1].obligation_id
    second = of_kind(facts, FactKind.FULFILLED)[1]
    assert second.obligation_kind is ObligationKind.FOLLOW_UP
    assert second.business_seconds == 3600  # from q2, the oldest unanswered inbound


def test_auto_reply_opens_nothing_but_a_mailing_list_message_does() -> None:
    facts = run(
        [
            email("ooo", f"{TUE}T10:00", IN, thread="t1", flags={Flag.AUTO_REPLY}),
            email(
                "bulk", f"{TUE}T10:00", IN, thread="t2", flags={Flag.AUTO_REPLY, Flag.MAILING_LIST}
            ),
            email("list", f"{TUE}T10:00", IN, thread="t3", flags={Flag.MAILING_LIST}),
        ]
    )
    assert [f.thread_key for f in of_kind(facts, FactKind.OBLIGATION_OPENED)] == ["t3"]


def test_internal_unknown_and_clientless_events_open_and_fulfil_nothing() -> None:
    facts = run(
        [
            email("int", f"{TUE}T10:00", Direction.INTERNAL),
            email("unk", f"{TUE}T10:01", Direction.UNKNOWN),
            email("anon", f"{TUE}T10:02", IN, client=None),
            email("in", f"{TUE}T10:03", IN, thread="t9"),
            email("int-out", f"{TUE}T10:30", Direction.INTERNAL, thread="t9"),
        ]
    )
    assert [f.source_event_id for f in of_kind(facts, FactKind.OBLIGATION_OPENED)] == ["in"]
    assert not of_kind(facts, FactKind.FULFILLED)
    assert {f.client_id for f in facts} == {"c1"}


def test_no_reply_needed_waives_the_thread_and_nothing_else() -> None:
    facts = run(
        [
            email("a", f"{TUE}T10:00", IN, thread="ta"),
            email("b", f"{TUE}T10:00", IN, thread="tb"),
            other(
                "nrn",
                f"{TUE}T10:15",
                Kind.NO_REPLY_NEEDED,
                INTERNAL,
                channel=Channel.EMAIL,
                thread="ta",
            ),
        ],
        until=f"{TUE}T23:00",
    )
    waived = only(facts, FactKind.WAIVED)
    assert waived.thread_key == "ta"
    assert waived.source_event_id == "nrn"
    assert only(facts, FactKind.BREACHED).thread_key == "tb"
    assert not of_kind(facts, FactKind.FULFILLED)


def test_obligation_ids_are_stable_and_distinct_per_opening_event() -> None:
    log = [
        email("q1", f"{TUE}T10:00", IN),
        email("r", f"{TUE}T10:10", OUT),
        email("q2", f"{TUE}T11:00", IN),
    ]
    first = [f.obligation_id for f in of_kind(run(log), FactKind.OBLIGATION_OPENED)]
    again = [f.obligation_id for f in of_kind(run(list(log)), FactKind.OBLIGATION_OPENED)]
    assert first == again
    assert len(set(first)) == 2
