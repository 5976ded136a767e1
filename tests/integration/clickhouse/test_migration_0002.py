"""Migration 0002 on a database that already holds data: the day-first rollups it builds from
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
from tests.integration.clickhouse.snapshots import ROLLUPS, snapshot

pytestmark = pytest.mark.integration


def test_0002_rebuilds_rollups_from_existing_data(
    sink_factory: Callable[..., ClickHouseSink],
    ch_settings: Callable[..., ClickHouseSettings],
) -> None:
    data = scenario(seed=11)
    fresh = sink_factory()  # 0001 + 0002, rollups fed by the 0002 views
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
        first, second = migrate.load()[:2]
        assert (first.version, second.version) == (1, 2)
        migrate.migrate(old, settings.database, [first])
        for table in ("sla_facts", "interactions", "clients"):  # as a 0001 sink wrote them
            old.command(
                f"INSERT INTO {table} SELECT * FROM `{fresh.database}`.{table}",
                settings={"async_insert": 0},
            )
        assert old.query("SELECT count() FROM client_daily").result_rows[0][0] > 0
        assert [m.version for m in migrate.migrate(old, settings.database)] == [2]
        tables = {r[0] for r in old.query("SHOW TABLES").result_rows}
        assert not tables & {"client_daily", "interaction_daily", "client_daily_mv"}
        got = snapshot(old)
        for name in ROLLUPS:
            assert got[name] == want[name], name
        for statement in second.statements(settings.database):  # died before being recorded
            old.command(statement)
        again = snapshot(old)
        for name in ROLLUPS:
            assert again[name] == want[name], name
    finally:
        old.close()
