"""Folding facts into an obligation's latest state (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.events import Channel
from schemas.facts import Fact, FactKind, ObligationKind, Outcome
from sinks.clickhouse.obligations import ObligationState, apply

pytestmark = pytest.mark.unit

T = datetime(2025, 3, 3, 9, tzinfo=UTC)


def f(kind: FactKind, fid: str, hours: float, **kw: Any) -> Fact:
    return Fact(
        fact_id=fid, kind=kind, client_id="c", at=T + timedelta(hours=hours), policy_id="p",
        policy_version=1, obligation_id="o", channel=Channel.EMAIL, **kw,
    )  # fmt: skip


def fold(*facts: Fact) -> ObligationState | None:
    state = None
    for version, fact in enumerate(facts):
        state = apply(state, fact, version)
    return state


OPEN = f(FactKind.OBLIGATION_OPENED, "open", 0, deadline=T + timedelta(hours=4),
         obligation_kind=ObligationKind.FIRST_RESPONSE)  # fmt: skip


def test_open_then_met() -> None:
    s = fold(OPEN, f(FactKind.FULFILLED, "done", 1, outcome=Outcome.MET, business_seconds=3600.0))
    assert s is not None
    assert (s.status, s.business_seconds, s.fulfilled_at, s.version) == (
        "met",
        3600.0,
        T + timedelta(hours=1),
        1,
    )
    assert (s.opened_at, s.deadline, s.kind) == (T, T + timedelta(hours=4), "first_response")


def test_breach_retracted_then_met_on_time() -> None:
    s = fold(
        OPEN,
        f(FactKind.BREACHED, "br", 4),
        f(FactKind.RETRACTED, "unbr", 5, retracts="br"),
    )
    assert s is not None
    assert s.status == "open"
    s = apply(s, f(FactKind.FULFILLED, "done", 5, outcome=Outcome.MET), 3)
    assert s is not None
    assert s.status == "met"


def test_retracting_an_unrelated_fact_changes_nothing() -> None:
    s = fold(OPEN, f(FactKind.BREACHED, "br", 4))
    assert apply(s, f(FactKind.RETRACTED, "x", 5, retracts="other"), 9) is s


def test_retracting_the_opening_voids_the_obligation() -> None:
    s = fold(OPEN, f(FactKind.RETRACTED, "x", 1, retracts="open"))
    assert s is not None
    assert s.status == "retracted"


def test_warning_changes_nothing_and_deadline_change_moves_deadline() -> None:
    s = fold(OPEN)
    assert apply(s, f(FactKind.WARNING, "w", 2, warning_fraction=0.5), 1) is s
    moved = apply(s, f(FactKind.DEADLINE_CHANGED, "d", 2, deadline=T + timedelta(hours=6)), 1)
    assert moved is not None
    assert moved.deadline == T + timedelta(hours=6)
    assert moved.status == "open"


def test_waived_and_facts_without_opening() -> None:
    s = fold(f(FactKind.BREACHED, "br", 4))  # OPENED fact never seen: start from this one
    assert s is not None
    assert s.status == "breached"
    assert s.opened_at == T + timedelta(hours=4)
    assert fold(f(FactKind.RETRACTED, "x", 1, retracts="y")) is None
    s = fold(OPEN, f(FactKind.WAIVED, "wv", 1))
    assert s is not None
    assert s.status == "waived"
