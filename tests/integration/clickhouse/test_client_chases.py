"""The client's observed standard in ClickHouse (issue 19 item 2, migration 0006): chases land in
client_chases, a retracted chase leaves it, and the named queries give the median and the 10th
percentile of the wait at chase and the evidence, equal to what the facts themselves say."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from engine.chase import deadline_passed, is_chase_retraction
from engine.core import Engine
from schemas.events import CallOutcome, Channel, Direction, Kind
from schemas.facts import Fact, FactKind
from shinrai.settings import ClickHouseSettings
from sinks.clickhouse import migrate
from sinks.clickhouse.client import connect
from sinks.clickhouse.queries import run_query
from sinks.clickhouse.rows import Position
from sinks.clickhouse.sink import ClickHouseSink
from tests.unit.engine.builders import IN, OUT, at, call, email, live, of_kind, other

pytestmark = pytest.mark.integration

TUE = "2026-03-03"
END = at("2026-03-06T20:00")


def _facts() -> list[Fact]:
    """Two clients' chases of every kind; c1's late reply retracts one of its chases."""
    arrivals = [
        email("q", f"{TUE}T10:00", IN),
        email("again", f"{TUE}T11:00", IN),
        email("again2", f"{TUE}T12:40", IN),
        email("tick", f"{TUE}T13:00", Direction.INTERNAL, thread="x"),
        email("ours", f"{TUE}T12:30", OUT, recorded=at(f"{TUE}T13:05")),  # late: retracts again2
        email("q2", "2026-03-04T16:00", IN, thread="t2"),
        call("ring", "2026-03-05T11:00", IN, CallOutcome.MISSED, wait=10),  # after the deadline
        other("vm", "2026-03-05T11:30", Kind.VOICEMAIL, IN, channel=Channel.PHONE, thread="v"),
        email("b1", f"{TUE}T09:00", IN, client="c2", thread="b"),
        email("b2", f"{TUE}T09:20", IN, client="c2", thread="b"),
    ]
    facts = live(arrivals, Engine(allowed_lateness=timedelta(minutes=5)), END)
    return [f for fs in facts.values() for f in fs]


def _write(sink: ClickHouseSink, facts: list[Fact], flush_every: int) -> None:
    for offset, f in enumerate(facts):
        sink.add_fact(f, Position("sla.facts.v1", 0, offset))
        if (offset + 1) % flush_every == 0:
            sink.flush()
    sink.flush()


def _standing(facts: list[Fact], client: str) -> list[Fact]:
    gone = {f.retracts for f in facts if is_chase_retraction(f)}
    return [
        f
        for f in of_kind(facts, FactKind.CHASED)
        if f.client_id == client and f.fact_id not in gone
    ]


def _exact(values: list[float], level: float) -> float:
    """ClickHouse quantileExact: the element at index floor(level * n) of the sorted values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(level * len(ordered)))]


@pytest.mark.parametrize("flush_every", [1, 1000], ids=["fact-by-fact", "one-flush"])
def test_observed_standard_and_evidence_equal_the_standing_chases(
    sink_factory: Callable[..., ClickHouseSink], flush_every: int
) -> None:
    facts = _facts()
    assert any(is_chase_retraction(f) for f in facts)  # the scenario is what it claims
    sink = sink_factory()
    _write(sink, facts, flush_every)
    now = END + timedelta(days=1)
    rows = {
        r["client_id"]: r
        for r in run_query(sink.client, "client_chase_standard", client_id="", now=now)
    }
    assert set(rows) == {"c1", "c2"}
    for client, row in rows.items():
        standing = _standing(facts, client)
        waits = [f.calendar_seconds or 0.0 for f in standing]
        business = [f.business_seconds or 0.0 for f in standing]
        assert row["chases"] == len(standing)
        assert row["before_deadline"] == sum(not deadline_passed(f) for f in standing)
        assert row["median_wait_seconds"] == _exact(waits, 0.5)
        assert row["p10_wait_seconds"] == _exact(waits, 0.1)
        assert row["median_wait_business_seconds"] == _exact(business, 0.5)
        assert row["p10_wait_business_seconds"] == _exact(business, 0.1)
    evidence = run_query(
        sink.client,
        "client_chases",
        client_id="c1",
        since=datetime(2026, 3, 1, tzinfo=UTC),
        now=now,
    )
    want = sorted(_standing(facts, "c1"), key=lambda f: f.at, reverse=True)
    assert [(r["at"], r["source_event_id"]) for r in evidence] == [
        (f.at, f.source_event_id) for f in want
    ]
    assert {r["chase_kind"] for r in evidence} == {"same_conversation", "call", "voicemail"}
    assert [bool(r["deadline_passed"]) for r in evidence] == [deadline_passed(f) for f in want]


def test_0006_rebuilds_client_chases_from_existing_facts(
    sink_factory: Callable[..., ClickHouseSink],
    ch_settings: Callable[..., ClickHouseSettings],
) -> None:
    fresh = sink_factory()
    _write(fresh, _facts(), flush_every=3)
    settings = ch_settings()
    old = connect(settings)
    try:
        upto_0005 = [m for m in migrate.load() if m.version <= 5]
        migrate.migrate(old, settings.database, upto_0005)
        old.command(
            f"INSERT INTO sla_facts SELECT * FROM `{fresh.database}`.sla_facts",
            settings={"async_insert": 0},
        )
        upto_0006 = [m for m in migrate.load() if m.version <= 6]
        assert [m.version for m in migrate.migrate(old, settings.database, upto_0006)] == [6]
        for statement in upto_0006[-1].statements(settings.database):  # a re-run
            old.command(statement)
        query = "SELECT * FROM client_chases FINAL ORDER BY client_id, at, fact_id"
        assert old.query(query).result_rows == fresh.client.query(query).result_rows
    finally:
        old.close()


def test_the_latest_suggested_target_is_read_back(
    sink_factory: Callable[..., ClickHouseSink],
) -> None:
    days = ["2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05", "2026-03-06"]
    waits = [60, 100, 120, 20, 30]  # minutes: the fourth chase lowers the suggestion
    events = []
    for day, wait in zip(days, waits, strict=True):
        events.append(email(f"q-{day}", f"{day}T10:00", IN, thread=f"t-{day}"))
        chase_at = at(f"{day}T10:00") + timedelta(minutes=wait)
        events.append(email(f"again-{day}", chase_at, IN, thread=f"t-{day}"))
        events.append(email(f"ours-{day}", f"{day}T17:00", OUT, thread=f"t-{day}"))
    engine = Engine(allowed_lateness=timedelta(0), chase_window=None)
    facts = live(events, engine, at("2026-03-09T12:00"))["c1"]
    suggested = of_kind(facts, FactKind.TARGET_SUGGESTED)
    assert len(suggested) >= 2  # the scenario moves the suggestion
    sink = sink_factory()
    _write(sink, facts, flush_every=4)
    for fact in suggested:
        got = run_query(sink.client, "client_target_suggestion", client_id="c1", now=fact.at)
        assert [(r["at"], r["suggested_business_seconds"]) for r in got] == [
            (fact.at, fact.target_business_seconds)
        ]
        assert got[0]["reason"] == fact.reason
    before = suggested[0].at - timedelta(microseconds=1)
    assert run_query(sink.client, "client_target_suggestion", client_id="c1", now=before) == []
