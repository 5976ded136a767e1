"""The step writes facts and alerts through pydantic's serializer directly (``streams.step``'s
``_fact_json`` / ``_alert_json``), not through ``schemas.base.encode``: the bytes must be the
very bytes ``encode`` gives, on every fact of realistic logs and on awkward values."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bench.engine import generate_realistic
from engine.alerts import alert_for
from engine.core import Engine
from engine.factmake import make_fact
from engine.replay import replay
from engine.state import Event
from producers.demo import generate as demo
from schemas.base import encode
from schemas.events import Channel
from schemas.facts import Fact, FactKind, ObligationKind, Outcome, TrustLevel
from streams.step import _alert_json, _fact_json

pytestmark = pytest.mark.unit


def _facts_of(events: Sequence[Event]) -> list[Fact]:
    ordered = sorted(events, key=lambda e: e.occurred_at)
    return list(replay(ordered, Engine(allowed_lateness=timedelta(hours=1))))


@pytest.mark.parametrize(
    "log",
    [
        pytest.param(lambda: generate_realistic(6000, clients=60, days=15), id="realistic"),
        pytest.param(lambda: list(demo(seed=7).events), id="demo"),
    ],
)
def test_facts_and_alerts_encode_to_the_bytes_of_encode(log: Callable[[], Sequence[Event]]) -> None:
    facts = _facts_of(log())
    assert len(facts) > 500
    assert len({f.kind for f in facts}) >= 5  # many kinds of fact, many optional fields
    alerts = [a for a in map(alert_for, facts) if a is not None]
    assert len(alerts) > 50
    assert [_fact_json(f) for f in facts] == [encode(f) for f in facts]
    assert [_alert_json(a) for a in alerts] == [encode(a) for a in alerts]


def test_awkward_values_encode_to_the_bytes_of_encode() -> None:
    tokyo = timezone(timedelta(hours=9))
    at = datetime(2026, 3, 4, 12, 0, 0, 123456, tzinfo=UTC)
    fact = make_fact(
        fact_id="f-1",
        kind=FactKind.BREACHED,
        client_id="クライアント-1",
        at=at,
        policy_id="std",
        policy_version=3,
        obligation_id="ob\u00e9-1",
        obligation_kind=ObligationKind.FIRST_RESPONSE,
        channel=Channel.EMAIL,
        opened_at=at.astimezone(tokyo),
        deadline=at + timedelta(microseconds=1),
        outcome=Outcome.MET_LATE,
        warning_fraction=0.1 + 0.2,
        business_seconds=1e16,
        calendar_seconds=float("inf"),
        target_business_seconds=float("nan"),
        overage_business_seconds=-0.0,
        overage_calendar_seconds=5e-324,
        answered_within_target=False,
        trust_from=TrustLevel.TRUSTED,
        trust_to=TrustLevel.DISTRUST,
        reason='quote " backslash \\ newline \n tab \t nul \x00 line sep \u2028 emoji \U0001f600',
    )
    assert _fact_json(fact) == encode(fact)
