"""Migrations 0002 and 0003 on a database that already holds data: the day-first rollups it builds from
the base tables equal the rollups a fresh database builds insert by insert, and re-running its
statements (a run that died before it was recorded) counts nothing twice."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shinrai.settings import ClickHouseSettings
from sinks.clickhouse import migrate
from sinks.clickhouse.client import connect
from sinks.clickhouse.sink import ClickHouseSink
from tests.integration.clickhouse.seed import directory, scenario
from tests.integration.clickhouse.snapshots import ROLLUPS, rollups, snapshot

pytestmark = pytest.mark.integration


def test_0002_0003_rebuild_rollups_from_existing_data(
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
        first, second, third = migrate.load()[:3]
        assert (first.version, second.version, third.version) == (1, 2, 3)
        migrate.migrate(old, settings.database, [first])
        for table in ("sla_facts", "interactions", "clients"):  # as a 0001 sink wrote them
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
        assert [m.version for m in migrate.migrate(old, settings.database)] == [3]
        for statement in third.statements(settings.database):  # died before being recorded
            old.command(statement)
        got = rollups(old)
        for name in ROLLUPS:
            assert got[name] == want[name], name
    finally:
        old.close()
