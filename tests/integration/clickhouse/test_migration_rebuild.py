"""Migrations 0002, 0003 and 0004 on a database that already holds data: the day-first rollups
and the owed obligations they build from the base tables equal what a fresh database builds insert
by insert, and re-running their statements (a run that died before it was recorded) counts
nothing twice."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shinrai.settings import ClickHouseSettings
from sinks.clickhouse import migrate
from sinks.clickhouse.client import connect
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
