"""Trust corrections converge like breaches (DESIGN §3 "Trust ladder"): a late reply that
retracts a breach retracts the trust change the breach made, and the latest standing trust change
(by time; times strictly increase per client) shows the level of in-order processing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.alerts import alert_for
from engine.core import Engine
from engine.state import START_LEVEL, ClientState, TrustEntry
from schemas.alerts import AlertLevel
from schemas.events import Direction
from schemas.facts import Fact, FactKind, TrustLevel
from schemas.policies import SlaPolicy, TrustLadderRules
from tests.unit.engine.builders import IN, OUT, Event, email, live, of_kind, policy_change, run

pytestmark = pytest.mark.unit

LATENESS = timedelta(minutes=10)
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday, in business hours
# Every outcome counts from the first one, one fast answer is enough to rise one level (so
# rises are exercised too: the running score starts at 0 and moves by a twentieth of the
# distance to each outcome's points), one breach from the start drops to distrust; no silences.
POLICY = SlaPolicy(
    policy_id="trust",
    silence_business_days=None,
    trust=TrustLadderRules(
        min_outcomes=1, rise_points=2, rise_dwell_days=0, thresholds=(-0.05, 0.0, 0.05, 0.15)
    ),
)


def latest_level(facts: list[Fact]) -> TrustLevel:
    """What "the latest change by time" shows once retractions are applied (the dashboard)."""
    retracted = {f.retracts for f in facts if f.kind is FactKind.RETRACTED}
    standing = [f for f in of_kind(facts, FactKind.TRUST_CHANGED) if f.fact_id not in retracted]
    if not standing:
        return START_LEVEL
    times = [f.at for f in standing]
    assert len(set(times)) == len(times), "two trust changes of one client share an instant"
    latest = max(standing, key=lambda f: f.at)
    assert latest.trust_to is not None
    return latest.trust_to


def test_a_late_reply_retracts_the_breachs_trust_change_and_shows_the_corrected_level() -> None:
    engine = Engine(allowed_lateness=LATENESS)
    setup = policy_change("p", START.isoformat(), POLICY)
    inbound = email("in", START + timedelta(minutes=1), IN)
    reply = email("out", START + timedelta(minutes=20), OUT)  # fast, long before 18:00
    tick = email("tick", START + timedelta(days=2), Direction.INTERNAL, thread="other")

    in_order = run([setup, inbound, reply, tick], engine)
    assert latest_level(in_order) is TrustLevel.CREDIBLE

    late = live([setup, inbound, tick, reply], engine, START + timedelta(days=2))["c1"]
    breach_move = next(
        f for f in of_kind(late, FactKind.TRUST_CHANGED) if f.trust_to is TrustLevel.DISTRUST
    )
    assert breach_move.at == datetime(2026, 3, 2, 18, tzinfo=UTC)
    retractions = {f.retracts: f for f in of_kind(late, FactKind.RETRACTED)}
    assert breach_move.fact_id in retractions  # the trust change is retracted with the breach
    assert retractions[breach_move.fact_id].at == reply.occurred_at
    # Whoever was paged for the downgrade learns that it no longer holds.
    page = alert_for(retractions[breach_move.fact_id])
    assert page is not None
    assert page.level is AlertLevel.RETRACTION
    assert "earlier trust downgrade alert retracted" in page.summary
    correction = of_kind(late, FactKind.TRUST_CHANGED)[-1]
    # Stamped after the change it supersedes, not at the reply's (earlier) time.
    assert correction.at > breach_move.at
    assert (correction.trust_from, correction.trust_to) == (TrustLevel.ASSURED, TrustLevel.CREDIBLE)
    assert "a correction for 2026-03-02T09:20:00+00:00" in (correction.reason or "")
    assert latest_level(late) is TrustLevel.CREDIBLE


def test_a_retracted_trust_change_that_is_not_the_latest_keeps_the_chain() -> None:
    state = ClientState(client_id="c1")
    engine = Engine(default_policy=POLICY)
    out: list[Fact] = []
    # Two changes caused by two subjects; retract the first: the second now starts where the
    # first did, and the level shown stays the second's.
    engine._record(state, TrustEntry("a", -2.0, "breach", START))
    engine._retrust(state, START, out, "a", "a")
    engine._record(state, TrustEntry("b", -2.0, "breach", START + timedelta(minutes=30)))
    engine._record(state, TrustEntry("c", 2.0, "fast", START + timedelta(hours=1)))
    engine._record(state, TrustEntry("d", 2.0, "fast", START + timedelta(hours=1)))
    engine._retrust(state, START + timedelta(hours=1), out, "b", "b")
    assert [f.trust_to for f in state.trust_log] == [TrustLevel.DISTRUST, TrustLevel.ANXIOUS]
    engine._retract_trust(state, "a", START + timedelta(hours=2), out, "test")
    assert [(f.trust_from, f.trust_to) for f in state.trust_log] == [
        (TrustLevel.ASSURED, TrustLevel.ANXIOUS)
    ]
    assert state.trust is TrustLevel.ANXIOUS
    engine._retract_trust(state, "b", START + timedelta(hours=2), out, "test")
    assert state.trust_log == []
    shown: TrustLevel = state.trust  # (mypy narrowed it to the level asserted above)
    assert shown is TrustLevel.ASSURED
    assert len(of_kind(out, FactKind.RETRACTED)) == 2


def test_trust_memory_survives_a_state_round_trip() -> None:
    engine = Engine(allowed_lateness=LATENESS)
    log: list[Event] = [
        policy_change("p", START.isoformat(), POLICY),
        email("in", START + timedelta(minutes=1), IN),
        email("tick", START + timedelta(days=2), Direction.INTERNAL, thread="other"),
        email("out", START + timedelta(minutes=20), OUT),
    ]
    plain = live(log, engine, START + timedelta(days=2))
    stored = live(log, engine, START + timedelta(days=2), roundtrip=True)
    assert stored == plain
    assert latest_level(stored["c1"]) is TrustLevel.CREDIBLE


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    replies=st.lists(
        st.one_of(st.none(), st.integers(min_value=5, max_value=3 * 24 * 60)),
        min_size=1,
        max_size=6,
    ),
    late=st.data(),
)
def test_any_late_correction_converges_to_the_in_order_level(
    replies: list[int | None], late: st.DataObject
) -> None:
    """Obligations in their own threads, each answered after some minutes (or never); one
    reply arrives after everything else (beyond the lateness, after its breach if it was in
    time): the latest standing trust level equals in-order processing's."""
    events: list[Event] = [policy_change("p", START.isoformat(), POLICY)]
    answers: list[Event] = []
    for i, minutes in enumerate(replies):
        opened = START + timedelta(minutes=7 * i + 1)
        events.append(email(f"in{i}", opened, IN, thread=f"t{i}"))
        if minutes is not None:
            answers.append(
                email(f"out{i}", opened + timedelta(minutes=minutes), OUT, thread=f"t{i}")
            )
    end = START + timedelta(days=6)
    tick = email("tick", end, Direction.INTERNAL, thread="clock")
    engine = Engine(allowed_lateness=LATENESS)
    in_order = run([*events, *answers, tick], engine, end)
    if not answers:
        return
    held = late.draw(st.integers(min_value=0, max_value=len(answers) - 1))
    on_time = sorted([*events, *answers[:held], *answers[held + 1 :]], key=lambda e: e.occurred_at)
    arrivals = [*on_time, tick, answers[held]]
    out_of_order = live(arrivals, engine, end).get("c1", [])
    assert latest_level(out_of_order) is latest_level(in_order)
