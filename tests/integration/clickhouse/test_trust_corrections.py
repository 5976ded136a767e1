"""Trust corrections reach ClickHouse: the trust change a retracted breach caused leaves the trust
history and the dashboard, which show the corrected level (migration 0005, trust_changes)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from engine.core import Engine
from schemas.events import Direction
from schemas.facts import Fact, FactKind, TrustLevel
from schemas.policies import SlaPolicy, TrustLadderRules
from shinrai.settings import ClickHouseSettings
from sinks.clickhouse import migrate
from sinks.clickhouse.client import connect
from sinks.clickhouse.queries import run_query
from sinks.clickhouse.rows import Position
from sinks.clickhouse.sink import ClickHouseSink
from tests.unit.engine.builders import IN, OUT, email, live, of_kind, policy_change

pytestmark = pytest.mark.integration

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
END = START + timedelta(days=2)
# One fast answer rises one level, one breach from the start drops to distrust (the ladder of
# tests/unit/engine/test_engine_trust_corrections.py): the correction moves the level shown.
POLICY = SlaPolicy(
    policy_id="trust",
    silence_business_days=None,
    trust=TrustLadderRules(
        min_outcomes=1, rise_points=2, rise_dwell_days=0, thresholds=(-0.05, 0.0, 0.05, 0.15)
    ),
)


def _late_reply_facts() -> tuple[list[Fact], list[Fact]]:
    """(facts of a live run where the reply arrives after its breach, in-order facts)."""
    setup = policy_change("p", START.isoformat(), POLICY)
    inbound = email("in", START + timedelta(minutes=1), IN)
    reply = email("out", START + timedelta(minutes=20), OUT)
    tick = email("tick", END, Direction.INTERNAL, thread="other")
    engine = Engine(allowed_lateness=timedelta(minutes=10))
    late = live([setup, inbound, tick, reply], engine, END)["c1"]
    in_order = live([setup, inbound, reply, tick], engine, END)["c1"]
    return late, in_order


def _write(sink: ClickHouseSink, facts: list[Fact], flush_every: int) -> None:
    for offset, f in enumerate(facts):
        sink.add_fact(f, Position("sla.facts.v1", 0, offset))
        if (offset + 1) % flush_every == 0:
            sink.flush()
    sink.flush()


@pytest.mark.parametrize("flush_every", [1, 1000], ids=["fact-by-fact", "one-flush"])
def test_the_retracted_trust_change_leaves_history_and_dashboard(
    sink_factory: Callable[..., ClickHouseSink], flush_every: int
) -> None:
    late, in_order = _late_reply_facts()
    retracted = {f.retracts for f in of_kind(late, FactKind.RETRACTED)}
    superseded = [f for f in of_kind(late, FactKind.TRUST_CHANGED) if f.fact_id in retracted]
    assert len(superseded) == 1  # the breach's downgrade (the scenario is what it claims)
    sink = sink_factory()
    _write(sink, late, flush_every)
    now = END + timedelta(days=1)
    levels = run_query(sink.client, "dashboard_trust_levels", now=now)
    assert [(r["client_id"], r["trust_level"]) for r in levels] == [
        ("c1", TrustLevel.CREDIBLE.value)
    ]
    want_in_order = of_kind(in_order, FactKind.TRUST_CHANGED)[-1].trust_to
    assert levels[0]["trust_level"] == want_in_order
    history = run_query(sink.client, "trust_history", client_id="c1", since=START, until=now)
    assert superseded[0].fact_id not in {r["fact_id"] for r in history}
    standing = [f for f in of_kind(late, FactKind.TRUST_CHANGED) if f.fact_id not in retracted]
    assert [(r["at"], r["trust_to"]) for r in history] == [
        (f.at, f.trust_to.value if f.trust_to else None) for f in standing
    ]
    # The raw history (0001) still has every change, the retracted one included.
    raw = sink.client.query("SELECT count() FROM trust_history FINAL").result_rows[0][0]
    assert raw == len(of_kind(late, FactKind.TRUST_CHANGED))


def test_0005_rebuilds_trust_changes_from_existing_facts(
    sink_factory: Callable[..., ClickHouseSink],
    ch_settings: Callable[..., ClickHouseSettings],
) -> None:
    late, _ = _late_reply_facts()
    fresh = sink_factory()
    _write(fresh, late, flush_every=2)
    settings = ch_settings()
    old = connect(settings)
    try:
        upto_0004 = [m for m in migrate.load() if m.version <= 4]
        migrate.migrate(old, settings.database, upto_0004)
        old.command(
            f"INSERT INTO sla_facts SELECT * FROM `{fresh.database}`.sla_facts",
            settings={"async_insert": 0},
        )
        upto_0005 = [m for m in migrate.load() if m.version <= 5]
        assert [m.version for m in migrate.migrate(old, settings.database, upto_0005)] == [5]
        for statement in migrate.load()[4].statements(settings.database):  # a re-run
            old.command(statement)
        query = "SELECT * FROM trust_changes FINAL ORDER BY client_id, at, fact_id"
        assert old.query(query).result_rows == fresh.client.query(query).result_rows
        now = END + timedelta(days=1)
        got = run_query(old, "dashboard_trust_levels", now=now)
        assert [r["trust_level"] for r in got] == [TrustLevel.CREDIBLE.value]
    finally:
        old.close()
