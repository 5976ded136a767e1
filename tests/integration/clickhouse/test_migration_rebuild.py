"""Migrations 0002, 0003, 0004 and 0007 on a database that already holds data: the day-first rollups
and the owed obligations they build from the base tables equal what a fresh database builds insert
by insert, and re-running their statements (a run that died before it was recorded) counts
nothing twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from shinrai.settings import ClickHouseSettings
from sinks.clickhouse import migrate
from sinks.clickhouse.client import connect

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client
from sinks.clickhouse.sink import ClickHouseSink
from tests.integration.clickhouse.seed import directory, scenario
from tests.integration.clickhouse.snapshots import ROLLUPS, owed, rollups, snapshot

pytestmark = pytest.mark.integration


def test_0002_to_0004_rebuild_from_existing_data(
    sink_factory: Callable[..., ClickHouseSink],
    ch_settings: Callable[..., ClickHouseSettings],
) -> None:
    data = scenario(seed=11)
    fresh = sink_factory()  # every migration: rollups fed by the views, insert by insert
    fresh.upsert_clients(directory(), version=1)
    for i, (record, pos) in enumerate([*data.facts, *data.events], start=1):
        fresh.add(record, pos)
        if i % 50 == 0:  # several flushes: retractions resolve from stored facts too
            fresh.flush()
    fresh.flush()
    want = snapshot(fresh.client)

    settings = ch_settings()
    old = connect(settings)
    try:
        first, second, third, fourth = migrate.load()[:4]
        assert [m.version for m in (first, second, third, fourth)] == [1, 2, 3, 4]
        migrate.migrate(old, settings.database, [first])
        # as a 0001 sink wrote them (obligations: every row, each obligation's older ones too)
        for table in ("sla_facts", "interactions", "clients", "obligations"):
            old.command(
                f"INSERT INTO {table} SELECT * FROM `{fresh.database}`.{table}",
                settings={"async_insert": 0},
            )
        assert old.query("SELECT count() FROM client_daily").result_rows[0][0] > 0
        assert [m.version for m in migrate.migrate(old, settings.database, [first, second])] == [2]
        tables = {r[0] for r in old.query("SHOW TABLES").result_rows}
        assert not tables & {"client_daily", "interaction_daily", "client_daily_mv"}
        for statement in second.statements(settings.database):  # died before being recorded
            old.command(statement)
        before_0003 = ("sla_daily", "interactions_daily", "client_activity")
        got = rollups(old, before_0003)
        for name in before_0003:
            assert got[name] == want[name], name
        upto_0003 = [first, second, third]
        assert [m.version for m in migrate.migrate(old, settings.database, upto_0003)] == [3]
        for statement in third.statements(settings.database):  # died before being recorded
            old.command(statement)
        got = rollups(old)
        for name in ROLLUPS:
            assert got[name] == want[name], name
        upto_0004 = [first, second, third, fourth]  # later ones are tested on their own
        assert [m.version for m in migrate.migrate(old, settings.database, upto_0004)] == [4]
        old.command("SYSTEM STOP MERGES obligations_owed")  # a duplicate must stay visible
        for statement in fourth.statements(settings.database):  # died before being recorded
            old.command(statement)
        assert owed(old) == want["obligations_owed"]
        assert len(want["obligations_owed"]) > 0
        # The rebuild wrote one row per owed obligation, once (the re-run was deduplicated).
        raw = old.query("SELECT count() FROM obligations_owed").result_rows[0][0]
        assert raw == len(want["obligations_owed"])
    finally:
        old.close()


def _q_type(client: Client) -> str:
    return str(
        client.query(
            "SELECT type FROM system.columns WHERE database = currentDatabase() "
            "AND table = 'sla_daily' AND name = 'response_business_q'"
        ).result_rows[0][0]
    )


def test_0007_sample_arrays_rebuild_from_existing_data(
    sink_factory: Callable[..., ClickHouseSink],
    ch_settings: Callable[..., ClickHouseSettings],
) -> None:
    """sla_daily with quantile states (0002) becomes sla_daily with sample arrays (0007): every
    counter and quantile reads the same before and after, and as a fresh database builds them
    insert by insert; re-running 0007 (a run that died before it was recorded) counts nothing
    twice."""
    data = scenario(seed=13)
    fresh = sink_factory()  # every migration, 0007 included: the view writes arrays
    fresh.upsert_clients(directory(), version=1)
    for i, (record, pos) in enumerate([*data.facts, *data.events], start=1):
        fresh.add(record, pos)
        if i % 40 == 0:
            fresh.flush()
    fresh.flush()
    want = rollups(fresh.client)
    assert _q_type(fresh.client).startswith("SimpleAggregateFunction(groupArrayArray")
    assert any(row[16] != [None, None, None] for row in want["sla_daily"])  # samples exist
    assert any(row[18] != [None, None, None] for row in want["sla_daily"])

    settings = ch_settings()
    old = connect(settings)
    try:
        known = migrate.load()
        upto_0006 = [m for m in known if m.version <= 6]
        seventh = next(m for m in known if m.version == 7)
        migrate.migrate(old, settings.database, upto_0006)
        # As a 0006 sink wrote them: several inserts, each through the state-building view.
        facts = f"`{fresh.database}`.sla_facts"
        for table in ("interactions", "clients", "obligations"):
            old.command(
                f"INSERT INTO {table} SELECT * FROM `{fresh.database}`.{table}",
                settings={"async_insert": 0},
            )
        for part in range(3):
            old.command(
                f"INSERT INTO sla_facts SELECT * FROM {facts} WHERE cityHash64(fact_id) % 3 = {part}",
                settings={"async_insert": 0},
            )
        assert _q_type(old).startswith("AggregateFunction(quantilesExactInclusive")
        assert rollups(old) == want  # the states read the same numbers as the arrays
        assert [m.version for m in migrate.migrate(old, settings.database, known)] == [
            m.version for m in known if m.version >= 7
        ]
        assert _q_type(old).startswith("SimpleAggregateFunction(groupArrayArray")
        assert rollups(old) == want
        for statement in seventh.statements(settings.database):  # died before being recorded
            old.command(statement)
        assert rollups(old) == want
        tables = {r[0] for r in old.query("SHOW TABLES").result_rows}
        assert "sla_daily_0007" not in tables
        assert "sla_daily_mv" in tables
        # The new view feeds the new table: one more fact counts once.
        before = old.query("SELECT sum(opened) FROM sla_daily").result_rows[0][0]
        old.command(
            f"INSERT INTO sla_facts SELECT * REPLACE (concat(fact_id, '-x') AS fact_id) "
            f"FROM {facts} WHERE kind = 'obligation_opened' LIMIT 1",
            settings={"async_insert": 0},
        )
        assert old.query("SELECT sum(opened) FROM sla_daily").result_rows[0][0] == before + 1
    finally:
        old.close()
