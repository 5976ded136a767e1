"""``make_fact`` builds the same Fact that validation would, and ``apply_in_order`` agrees with
``apply``/``advance`` (the replay fast path)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bench.engine import generate_realistic
from engine.core import Engine
from engine.factmake import make_fact
from engine.replay import replay
from schemas.base import decode, encode
from schemas.facts import Fact, FactKind, ObligationKind, Outcome
from tests.unit.engine.builders import IN, OUT, at, email, live, run

pytestmark = pytest.mark.unit


def test_made_fact_equals_validated_fact_and_round_trips() -> None:
    values: dict[str, Any] = {
        "fact_id": "f1",
        "kind": FactKind.FULFILLED,
        "client_id": "c1",
        "at": at("2026-03-03T10:30"),
        "policy_id": "default",
        "policy_version": 1,
        "obligation_id": "o1",
        "obligation_kind": ObligationKind.FIRST_RESPONSE,
        "outcome": Outcome.MET,
        "business_seconds": 1800.0,
    }
    made = make_fact(**values)
    assert made == Fact(**values)
    assert made.model_dump() == Fact(**values).model_dump()
    assert decode(Fact, encode(made)) == made
    assert made.model_fields_set == set(values)
    with pytest.raises(TypeError, match="client_id"):
        make_fact(
            fact_id="f2", kind=FactKind.SILENCE, at=values["at"], policy_id="p", policy_version=1
        )


def test_every_engine_fact_survives_validation() -> None:
    facts = run(
        [email("a", "2026-03-03T10:00", IN), email("b", "2026-03-04T11:00", OUT)],
        until="2026-03-30",
    )
    assert {f.kind for f in facts} >= {
        FactKind.OBLIGATION_OPENED,
        FactKind.BREACHED,
        FactKind.SILENCE,
    }
    for fact in facts:
        assert decode(Fact, encode(fact)) == fact


def test_apply_in_order_matches_apply_and_advance() -> None:
    log = [
        email("a", "2026-03-03T10:00", IN),
        email("b", "2026-03-03T10:00", IN, thread="t2"),
        email("r", "2026-03-03T17:00", OUT, thread="t2"),
        email("c", "2026-03-04T12:00", IN),
    ]
    end = at("2026-03-25")
    engine = Engine(allowed_lateness=timedelta(minutes=5))
    state = None
    fast: list[Fact] = []
    for ev in log:
        state, out = engine.apply_in_order(state, ev)
        fast += out
    assert state is not None
    fast += engine.settle(state, end)[1]
    assert fast == live(log, engine, end)["c1"]
    # An event from before what was processed takes the ordinary (correction) path.
    state, out = engine.apply_in_order(state, email("late", "2026-03-20T11:00", OUT, thread="t9"))
    assert out == []
    assert "late" in state.seen
    assert state.stretch_start == at("2026-03-20T11:00")  # the late touch restarted the cadence
    assert state.too_late == 0


def test_trusted_facts_encode_byte_for_byte_like_validated_ones_on_the_realistic_log() -> None:
    events = generate_realistic(3000, clients=60, days=20)
    end = max(ev.occurred_at for ev in events) + timedelta(days=1)
    facts = list(replay(events, Engine(), watermark_end=end))
    assert len({f.kind for f in facts}) >= 6  # many kinds, optional fields set and unset
    for fact in facts:
        validated = Fact(**{name: getattr(fact, name) for name in fact.model_fields_set})
        assert encode(fact) == encode(validated)
        assert validated == fact
