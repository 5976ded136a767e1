"""Chase pages (issue 19 item 5): a chase before the deadline pages the owner, once per obligation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.alerts import alert_for
from engine.core import Engine
from schemas.alerts import AlertLevel
from schemas.facts import FactKind
from sinks.alerts.routing import DEFAULT_RULES
from tests.unit.engine.builders import IN, OUT, at, email, live, of_kind, run

pytestmark = pytest.mark.unit

TUE = "2026-03-03"  # default policy: opened before 15:00 -> due 18:00


def test_chases_before_the_deadline_page_the_owner_once_per_obligation() -> None:
    facts = run(
        [
            email("q", f"{TUE}T10:00", IN),
            email("again", f"{TUE}T12:00", IN),
            email("again2", f"{TUE}T14:00", IN),
            email("q-other", f"{TUE}T10:30", IN, thread="t2"),
            email("again-other", f"{TUE}T11:00", IN, thread="t2"),
        ],
        Engine(allowed_lateness=timedelta(0), chase_window=None),
    )
    chases = of_kind(facts, FactKind.CHASED)
    assert len(chases) == 3
    alerts = [a for a in (alert_for(f) for f in chases) if a is not None]
    assert {a.level for a in alerts} == {AlertLevel.CHASE}
    # Two chases of one obligation share one alert id: the delivery store sends it once.
    by_ob = {a.obligation_id: a.alert_id for a in alerts}
    assert len({a.alert_id for a in alerts}) == len(by_ob) == 2
    first = next(a for a in alerts if a.fact_id == chases[0].fact_id)
    assert first.deadline == at(f"{TUE}T18:00")
    assert "asked again" in first.summary
    assert DEFAULT_RULES[AlertLevel.CHASE] == ("owner",)


def test_a_chase_after_the_deadline_pages_nobody_the_breach_did() -> None:
    facts = run([email("q", f"{TUE}T16:00", IN), email("again", "2026-03-04T11:00", IN)])
    chase = of_kind(facts, FactKind.CHASED)[0]
    assert alert_for(chase) is None
    breach = of_kind(facts, FactKind.BREACHED)[0]
    alert = alert_for(breach)
    assert alert is not None
    assert alert.level is AlertLevel.BREACH


def test_a_retracted_chase_pages_nobody() -> None:
    engine = Engine(allowed_lateness=timedelta(minutes=5))
    arrivals = [
        email("q", f"{TUE}T10:00", IN),
        email("again", f"{TUE}T12:00", IN),
        email("later", f"{TUE}T13:00", IN, thread="t3"),
        email("ours", f"{TUE}T11:00", OUT, recorded=at(f"{TUE}T13:05")),
    ]
    facts = live(arrivals, engine, at(f"{TUE}T20:00"))["c1"]
    retracted = [f for f in of_kind(facts, FactKind.RETRACTED)]
    assert retracted
    assert all(alert_for(f) is None for f in retracted)
