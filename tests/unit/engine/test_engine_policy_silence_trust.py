"""Policy changes, silence cadence, trust ladder, speed of answer, alerts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.alerts import alert_for
from engine.core import Engine
from schemas.alerts import AlertLevel, alert_id_for
from schemas.events import CallOutcome, InteractionEvent
from schemas.facts import Fact, FactKind, TrustLevel
from schemas.policies import BusinessDuration, SlaPolicy, TrustLadderRules
from tests.unit.engine.builders import (
    IN,
    OUT,
    at,
    call,
    email,
    live,
    of_kind,
    only,
    policy_change,
    run,
)

pytestmark = pytest.mark.unit

TUE = "2026-03-03"


def test_policy_change_mid_obligation_moves_deadline_and_versions_later_facts() -> None:
    tighter = SlaPolicy(policy_id="gold", version=2, first_response=BusinessDuration(minutes=180))
    facts = run(
        [
            email("in", f"{TUE}T10:00", IN),
            policy_change("pc", f"{TUE}T11:00", tighter),
        ],
        until=f"{TUE}T23:00",
    )
    opened = only(facts, FactKind.OBLIGATION_OPENED)
    assert (opened.policy_id, opened.policy_version, opened.deadline) == (
        "default",
        1,
        at(f"{TUE}T18:00"),
    )
    changed = only(facts, FactKind.DEADLINE_CHANGED)
    assert changed.deadline == at(f"{TUE}T13:00")  # 3 business hours from the 10:00 opening
    assert (changed.policy_id, changed.policy_version) == ("gold", 2)
    assert changed.source_event_id == "pc"
    later = [f for f in facts if f.at > at(f"{TUE}T11:00")]
    assert [(f.kind, f.at) for f in later] == [
        (FactKind.WARNING, at(f"{TUE}T11:30")),
        (FactKind.WARNING, at(f"{TUE}T12:15")),
        (FactKind.WARNING, at(f"{TUE}T12:42")),
        (FactKind.BREACHED, at(f"{TUE}T13:00")),
    ]
    assert {(f.policy_id, f.policy_version) for f in later} == {("gold", 2)}


def test_stricter_policy_that_makes_an_obligation_overdue_breaches_at_the_change() -> None:
    strict = SlaPolicy(policy_id="p", version=3, first_response=BusinessDuration(minutes=30))
    facts = run(
        [email("in", f"{TUE}T10:00", IN), policy_change("pc", f"{TUE}T11:00", strict)],
        until=f"{TUE}T23:00",
    )
    breach = only(facts, FactKind.BREACHED)
    assert breach.at == at(f"{TUE}T11:00")
    assert breach.deadline == at(f"{TUE}T10:30")
    assert not of_kind(facts, FactKind.WARNING)


def test_the_pair_in_force_announced_again_changes_nothing() -> None:
    # The directory feed re-announces a client's pair when it re-reads the directory; the
    # second announcement, stamped later, must not re-evaluate (and drop the unfired warnings of)
    # the open obligation nor emit DEADLINE_CHANGED for a deadline that did not move.
    gold = SlaPolicy(policy_id="gold", version=2, first_response=BusinessDuration(minutes=180))
    events = [policy_change("pc1", f"{TUE}T09:00", gold), email("in", f"{TUE}T10:00", IN)]
    once = run(events, until=f"{TUE}T23:00")
    again = run([*events, policy_change("pc2", f"{TUE}T11:00", gold)], until=f"{TUE}T23:00")
    assert not of_kind(again, FactKind.DEADLINE_CHANGED)
    assert [(f.kind, f.at) for f in again] == [(f.kind, f.at) for f in once]
    assert len(of_kind(again, FactKind.WARNING)) == 3
    # A different version of the same policy id is a change (and is re-evaluated).
    gold3 = gold.model_copy(update={"version": 3})
    changed = run([*events, policy_change("pc3", f"{TUE}T11:00", gold3)], until=f"{TUE}T23:00")
    assert only(changed, FactKind.DEADLINE_CHANGED).policy_version == 3


def test_silence_after_cadence_once_per_stretch_skipping_weekends() -> None:
    policy = SlaPolicy(policy_id="cadence", silence_business_days=2)
    engine = Engine(allowed_lateness=timedelta(0), default_policy=policy)
    facts = run(
        [
            email("o1", "2026-03-02T10:00", OUT),  # Monday
            email("i1", "2026-03-05T09:00", IN, thread="t2"),  # inbound does not reset it
            email("o2", "2026-03-05T15:00", OUT, thread="t2"),  # Thursday
        ],
        engine,
        until="2026-03-20T00:00",
    )
    silences = of_kind(facts, FactKind.SILENCE)
    assert [s.at for s in silences] == [
        at("2026-03-04T10:00"),  # Wednesday, two business days after Monday
        at("2026-03-09T15:00"),  # Monday: the weekend does not count
    ]
    assert len({s.fact_id for s in silences}) == 2
    alert = alert_for(silences[0])
    assert alert is not None
    assert alert.level is AlertLevel.SILENCE


def test_silence_cadence_can_be_switched_off() -> None:
    policy = SlaPolicy(policy_id="quiet", silence_business_days=None)
    engine = Engine(allowed_lateness=timedelta(0), default_policy=policy)
    facts = run([email("o1", "2026-03-02T10:00", OUT)], engine, until="2026-06-01")
    assert not of_kind(facts, FactKind.SILENCE)


def test_late_touch_before_a_reported_silence_retracts_it() -> None:
    policy = SlaPolicy(policy_id="cadence", silence_business_days=2)
    engine = Engine(allowed_lateness=timedelta(0), default_policy=policy)
    st, _ = engine.apply(None, email("o1", "2026-03-02T10:00", OUT))
    st, fired = engine.advance(st, at("2026-03-04T12:00"))
    silence = only(fired, FactKind.SILENCE)
    st, out = engine.apply(st, email("o2", "2026-03-03T16:00", OUT))  # exported late
    retraction = only(out, FactKind.RETRACTED)
    assert retraction.retracts == silence.fact_id
    alert = alert_for(retraction)
    assert alert is not None
    assert alert.alert_id == alert_id_for(silence.fact_id, AlertLevel.RETRACTION.value)
    st, out = engine.advance(st, at("2026-03-06T00:00"))
    assert only(out, FactKind.SILENCE).at == at("2026-03-05T16:00")  # the corrected stretch


def _answer(i: int, minutes: int, day: str = TUE) -> list[InteractionEvent]:
    thread = f"t{i}"
    start = at(f"{day}T10:00") + timedelta(minutes=i)
    return [
        email(f"in{i}", start, IN, thread=thread),
        email(f"out{i}", start + timedelta(minutes=minutes), OUT, thread=thread),
    ]


def test_trust_ladder_falls_at_once_on_breaches_with_reasons() -> None:
    log = [*_answer(1, 10), *_answer(2, 10), *_answer(3, 10)]
    # Then four requests nobody answers: they all breach at 18:00.
    log += [email(f"lost{i}", "2026-03-04T10:00", IN, thread=f"lost{i}") for i in range(4)]
    facts = run(log, until="2026-03-06T00:00")
    moves = of_kind(facts, FactKind.TRUST_CHANGED)
    # Three fast answers in a day are no sustained record: no rise. The first breach takes one
    # level off at once; the next ones find the level at 不安 anxious, as low as breaches alone
    # take it (a running score of -0.40 is above the anxious threshold -1.00).
    assert [(m.trust_from, m.trust_to) for m in moves] == [
        (TrustLevel.ASSURED, TrustLevel.ANXIOUS),
    ]
    assert moves[0].at == at("2026-03-04T18:00")  # the breach instant
    assert "a breach at 2026-03-04 18:00 UTC" in (moves[0].reason or "")
    assert "1 breach in 30 days" in (moves[0].reason or "")
    downgrade = alert_for(moves[0])
    assert downgrade is not None
    assert downgrade.level is AlertLevel.TRUST_DOWNGRADE
    assert downgrade.trust_to is TrustLevel.ANXIOUS


# A ladder that rises after two points in a row, at once, on a score that is the average of
# the last two outcomes: what separates fast answers from slow ones is the score threshold.
QUICK = SlaPolicy(
    policy_id="quick",
    trust=TrustLadderRules(window=2, rise_points=2, rise_dwell_days=0, min_outcomes=1),
)


def test_on_time_but_slow_answers_score_less_than_fast_ones() -> None:
    setup = policy_change("p", f"{TUE}T09:00", QUICK)
    fast = of_kind(
        run([setup, *_answer(1, 10), *_answer(2, 10), *_answer(3, 10)]), FactKind.TRUST_CHANGED
    )
    assert [(m.trust_from, m.trust_to) for m in fast] == [
        (TrustLevel.ASSURED, TrustLevel.CREDIBLE),
        (TrustLevel.CREDIBLE, TrustLevel.TRUSTED),  # running score +1.50
    ]
    assert upgrade_alerts(fast) == []  # an upgrade pages nobody
    # Opened 10:0x, due 18:00: 5 hours is on time but beyond 50% of the SLA.
    slow = [setup, *_answer(1, 300), *_answer(2, 300), *_answer(3, 300)]
    moves = of_kind(run(slow), FactKind.TRUST_CHANGED)
    assert [(m.trust_from, m.trust_to) for m in moves] == [
        (TrustLevel.ASSURED, TrustLevel.CREDIBLE)  # running score +0.75 .. +0.88: not trusted
    ]
    assert "2 answers in target since" in (moves[0].reason or "")


def upgrade_alerts(moves: list[Fact]) -> list[object]:
    """The alerts raised by ``moves`` (none for upgrades)."""
    return [a for m in moves if (a := alert_for(m)) is not None]


def test_speed_of_answer_for_every_inbound_call() -> None:
    facts = run(
        [
            call("fast", f"{TUE}T10:00", IN, CallOutcome.ANSWERED, wait=12, duration=100),
            call("slow", f"{TUE}T10:10", IN, CallOutcome.ANSWERED, wait=45, duration=100),
            call("gone", f"{TUE}T10:20", IN, CallOutcome.ABANDONED, wait=30),
            call("out", f"{TUE}T10:30", OUT, CallOutcome.ANSWERED, duration=100),
        ]
    )
    soa = of_kind(facts, FactKind.SPEED_OF_ANSWER)
    assert [
        (s.source_event_id, s.wait_seconds, s.answered_within_target, s.call_outcome) for s in soa
    ] == [
        ("fast", 12, True, CallOutcome.ANSWERED),
        ("slow", 45, False, CallOutcome.ANSWERED),
        ("gone", 30, False, CallOutcome.ABANDONED),
    ]
    # The abandoned call opened a callback, answered by the outbound call at 10:30.
    assert only(facts, FactKind.FULFILLED).business_seconds == 600


def test_warning_alerts_are_one_per_obligation_and_fraction() -> None:
    policy = SlaPolicy(policy_id="4h", first_response=BusinessDuration(minutes=240))
    engine = Engine(allowed_lateness=timedelta(0), default_policy=policy)
    facts = run([email("in", f"{TUE}T10:00", IN)], engine, until=f"{TUE}T23:00")
    alerts = [alert_for(f) for f in facts]
    ids = [a.alert_id for a in alerts if a is not None]
    ob = only(facts, FactKind.BREACHED).obligation_id
    assert ob is not None
    assert ids == [
        alert_id_for(ob, "warning:0.5"),
        alert_id_for(ob, "warning:0.75"),
        alert_id_for(ob, "warning:0.9"),
        alert_id_for(ob, "breach"),
    ]
    again = [
        alert_for(f) for f in run([email("in", f"{TUE}T10:00", IN)], engine, until=f"{TUE}T23:00")
    ]
    assert [a.alert_id for a in again if a is not None] == ids


def test_live_drive_equals_replay_per_client() -> None:
    log = [
        email("a", f"{TUE}T10:00", IN),
        email("b", f"{TUE}T10:00", IN, client="c2"),
        email("r", f"{TUE}T10:20", OUT, client="c2"),
    ]
    end = at(f"{TUE}T23:00")
    engine = Engine(allowed_lateness=timedelta(minutes=5))
    by_client = live(log, engine, end)
    replayed = run(log, engine, until=end)
    for client, facts in by_client.items():
        assert [f for f in replayed if f.client_id == client] == facts
