"""The dashboard_* named queries on the seeded demo, against numbers computed from the facts.

Expectations come from replaying the demo log in Python (``seeded.facts``) and the definitions
written in each query file — never from ClickHouse.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from schemas.facts import Fact, FactKind
from sinks.clickhouse.queries import run_query
from tests.integration.clickhouse.expected import linear_quantile, tally
from tests.integration.dashboard.conftest import DAYS, NOW, Seeded

pytestmark = pytest.mark.integration

SINCE = NOW.date() - timedelta(days=DAYS - 1)
TOKYO = ZoneInfo("Asia/Tokyo")
UNTIL = NOW.date() + timedelta(days=1)


def _in(f: Fact, since: date = SINCE, until: date = UNTIL) -> bool:
    return since <= f.at.date() < until


def test_the_demo_has_no_retractions(seeded: Seeded) -> None:
    # The expectations below ignore retractions; the in-order demo must not have any.
    assert not [f for f in seeded.facts if f.kind is FactKind.RETRACTED]


def test_dashboard_clients_is_the_directory(seeded: Seeded) -> None:
    rows = run_query(seeded.client, "dashboard_clients")
    assert [(r["client_id"], r["name"], r["owner"]) for r in rows] == sorted(
        (c.client_id, c.name, c.owner) for c in seeded.demo.directory.clients
    )


def test_dashboard_trust_levels(seeded: Seeded) -> None:
    latest: dict[str, Fact] = {}
    changes: dict[str, int] = defaultdict(int)
    for f in seeded.facts:
        if f.kind is FactKind.TRUST_CHANGED and f.at <= NOW:
            changes[f.client_id] += 1
            best = latest.get(f.client_id)
            if best is None or (f.at, f.fact_id) > (best.at, best.fact_id):
                latest[f.client_id] = f
    rows = run_query(seeded.client, "dashboard_trust_levels", now=NOW)
    got = {r["client_id"]: (r["trust_level"], r["since"], r["changes"]) for r in rows}
    want = {
        c: (f.trust_to.value, f.at, changes[c])  # type: ignore[union-attr]
        for c, f in latest.items()
    }
    assert got == want
    assert len(want) >= 4


def test_dashboard_daily_trend(seeded: Seeded) -> None:
    counts, samples = tally((f for f in seeded.facts if _in(f)), lambda f: f.at.date())
    rows = run_query(seeded.client, "dashboard_daily_trend", since=SINCE, until=UNTIL)
    assert [r["day"] for r in rows] == sorted(counts)
    for r in rows:
        c = counts[r["day"]]
        for key in ("opened", "met", "met_late", "breached", "warnings", "calls", "abandoned"):
            assert r[key] == c[key], (r["day"], key)
        due = c["met"] + c["breached"]
        assert r["attainment"] == (None if due == 0 else pytest.approx(c["met"] / due))
        day_samples = samples.get(r["day"])
        if day_samples:
            assert r["p50_business_seconds"] == pytest.approx(linear_quantile(day_samples, 0.5))
            assert r["p90_business_seconds"] == pytest.approx(linear_quantile(day_samples, 0.9))
        else:
            assert r["p50_business_seconds"] is None
    assert sum(r["breached"] for r in rows) >= 10


def test_dashboard_phone(seeded: Seeded) -> None:
    per: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    waits: dict[str, list[float]] = defaultdict(list)
    for f in seeded.facts:
        if f.kind is not FactKind.SPEED_OF_ANSWER or not _in(f):
            continue
        p = per[f.client_id]
        p["calls"] += 1
        outcome = f.call_outcome.value if f.call_outcome is not None else ""
        p[outcome] += 1
        p["within"] += bool(f.answered_within_target)
        if outcome == "answered" and f.wait_seconds is not None:
            waits[f.client_id].append(f.wait_seconds)
    rows = run_query(seeded.client, "dashboard_phone", since=SINCE, until=UNTIL)
    assert sorted(r["client_id"] for r in rows) == sorted(per)
    for r in rows:
        p = per[r["client_id"]]
        assert (r["calls"], r["answered"], r["within_target"], r["abandoned"], r["missed"]) == (
            p["calls"],
            p["answered"],
            p["within"],
            p["abandoned"],
            p["missed"],
        )
        assert r["answer_rate"] == pytest.approx(p["answered"] / p["calls"])
        assert r["abandon_rate"] == pytest.approx(p["abandoned"] / p["calls"])
        w = waits[r["client_id"]]
        assert r["p50_answer_wait_seconds"] == pytest.approx(linear_quantile(w, 0.5))
        assert r["p90_answer_wait_seconds"] == pytest.approx(linear_quantile(w, 0.9))


def test_dashboard_recent_alerts(seeded: Seeded) -> None:
    since = NOW - timedelta(days=10)
    final: dict[str, str] = {}
    for f in seeded.facts:  # the obligation's latest status, as the sink folds it
        if f.obligation_id is None:
            continue
        if f.kind is FactKind.FULFILLED:
            final[f.obligation_id] = f.outcome.value  # type: ignore[union-attr]
        elif f.kind is FactKind.BREACHED:
            final[f.obligation_id] = "breached"
        elif f.kind is FactKind.OBLIGATION_OPENED:
            final[f.obligation_id] = "open"
    picked = sorted(
        (
            f
            for f in seeded.facts
            if f.kind in (FactKind.BREACHED, FactKind.WARNING) and since <= f.at <= NOW
        ),
        key=lambda f: (-f.at.timestamp(), f.fact_id),
    )[:100]
    rows = run_query(seeded.client, "dashboard_recent_alerts", since=since, now=NOW)
    assert [(r["at"], r["kind"], r["client_id"], r["obligation_id"]) for r in rows] == [
        (f.at, f.kind.value, f.client_id, f.obligation_id) for f in picked
    ]
    assert [r["status"] for r in rows] == [final[f.obligation_id] for f in picked]  # type: ignore[index]
    owners = {c.client_id: c.owner for c in seeded.demo.directory.clients}
    assert all(r["owner"] == owners[r["client_id"]] for r in rows)
    assert {"breached", "warning"} <= {r["kind"] for r in rows}


def _due_by_day(seeded: Seeded, since: datetime, client_id: str = "") -> dict[date, Counter[str]]:
    """Obligations by the Tokyo day of their deadline in [since, NOW], outcome as of NOW,
    folded from the replayed facts (the latest deadline and status of each obligation)."""
    deadline: dict[str, datetime] = {}
    status: dict[str, str] = {}
    for f in seeded.facts:
        oid = f.obligation_id
        if oid is None or (client_id and f.client_id != client_id):
            continue
        if f.deadline is not None:
            deadline[oid] = f.deadline
        if f.kind is FactKind.FULFILLED and f.at <= NOW:
            status[oid] = f.outcome.value  # type: ignore[union-attr]
        elif f.kind is FactKind.WAIVED:
            status[oid] = "waived"
    out: dict[date, Counter[str]] = defaultdict(Counter)
    for oid, due in deadline.items():
        if since <= due <= NOW:
            day = due.astimezone(TOKYO).date()
            out[day]["due"] += 1
            out[day][status.get(oid, "breached")] += 1
    return out


@pytest.mark.parametrize("one_client", [False, True])
def test_dashboard_due_trend_counts_by_the_day_obligations_fell_due(
    seeded: Seeded, one_client: bool
) -> None:
    since = datetime(2026, 2, 10, tzinfo=TOKYO).astimezone(UTC)
    client_id = seeded.demo.directory.clients[0].client_id if one_client else ""
    want = _due_by_day(seeded, since, client_id)
    rows = run_query(
        seeded.client,
        "dashboard_due_trend",
        since=since,
        now=NOW,
        tz="Asia/Tokyo",
        owner="",
        client_id=client_id,
    )
    assert [r["day"] for r in rows] == sorted(want)
    for r in rows:
        c = want[r["day"]]
        for key in ("due", "met", "met_late", "breached", "waived"):
            assert r[key] == c[key], (r["day"], key)
        graded = c["due"] - c["waived"]
        assert r["attainment"] == (None if graded == 0 else pytest.approx(c["met"] / graded))
    assert sum(c["due"] for c in want.values()) >= (5 if one_client else 50)


def test_dashboard_due_trend_owner_filter(seeded: Seeded) -> None:
    since = datetime(2026, 2, 10, tzinfo=TOKYO).astimezone(UTC)
    total: Counter[str] = Counter()
    owners = sorted({c.owner for c in seeded.demo.directory.clients})
    for owner in owners:
        rows = run_query(
            seeded.client,
            "dashboard_due_trend",
            since=since,
            now=NOW,
            tz="Asia/Tokyo",
            owner=owner,
            client_id="",
        )
        mine = Counter[str]()
        for c in seeded.demo.directory.clients:
            if c.owner == owner:
                for day_counts in _due_by_day(seeded, since, c.client_id).values():
                    mine.update(day_counts)
        assert sum(r["due"] for r in rows) == mine["due"], owner
        total["due"] += mine["due"]
    assert total["due"] == sum(c["due"] for c in _due_by_day(seeded, since).values())
