"""Risk order of the clients table: overdue, due soonest, trust level, breaches this week."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboard.risk import ClientRisk, riskiest_first

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 4, 5, 30, tzinfo=UTC)


def _risk(
    cid: str,
    *,
    overdue: int = 0,
    left: float | None = None,
    trust: str = "assured",
    week: int = 0,
) -> ClientRisk:
    deadline = None if left is None else NOW + timedelta(seconds=left)
    return ClientRisk(cid, cid.upper(), overdue, deadline, left, trust, week)


def test_order() -> None:
    clients = [
        _risk("calm", trust="trusted"),
        _risk("due-later", left=7200),
        _risk("due-soon", left=600),
        _risk("overdue-one", overdue=1, left=-60),
        _risk("overdue-long", overdue=1, left=-7200),
        _risk("overdue-many", overdue=3, left=-30),
        _risk("distrust", trust="distrust"),
        _risk("anxious-breaches", trust="anxious", week=4),
        _risk("anxious", trust="anxious", week=1),
    ]
    assert [r.client_id for r in riskiest_first(clients)] == [
        "overdue-many",  # most overdue obligations
        "overdue-long",  # overdue the longest
        "overdue-one",
        "due-soon",
        "due-later",
        "distrust",  # nothing owed: the lowest trust first
        "anxious-breaches",  # same level: more breaches this week first
        "anxious",
        "calm",
    ]
