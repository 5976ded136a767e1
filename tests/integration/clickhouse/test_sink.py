"""The sink's promises: idempotent re-sends, identical contents after a crash and replay,
typed errors instead of hangs, and migrations that apply once."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import OperationalError

from schemas.base import encode
from schemas.facts import Fact
from shinrai.errors import ConfigError, SinkError, SinkUnavailable
from shinrai.settings import ClickHouseSettings
from sinks.clickhouse import migrate
from sinks.clickhouse.client import connect
from sinks.clickhouse.records import fact_row, interaction_row
from sinks.clickhouse.rows import Delivery, Position
from sinks.clickhouse.sink import ClickHouseSink
from tests.integration.clickhouse.seed import Scenario, directory, scenario
from tests.integration.clickhouse.snapshots import snapshot, stop_merges

pytestmark = pytest.mark.integration

SinkFactory = Callable[..., ClickHouseSink]


def _deliveries() -> list[Delivery]:
    at = datetime(2025, 3, 4, 9, 30, 1, 250_000, tzinfo=UTC)
    return [
        Delivery("a1", 1, at, "https://hooks.example/x", 503, "retry", "503", 12.5),
        Delivery("a1", 2, at + timedelta(seconds=2), "https://hooks.example/x", 200, "delivered"),
        Delivery("a2", 1, at, "https://hooks.example/y", None, "dead_letter", "expired", 0.0),
    ]


_INSERT_INTO = re.compile(r"^INSERT INTO (\w+)")


def intercept_inserts(client: Any, hook: Callable[[str, Callable[[], Any]], Any]) -> None:
    """Route every data insert the sink makes through ``hook(table, send)``.

    The sink inserts with ``insert_arrow`` on a server and with an ``INSERT ... SELECT FROM
    Python(...)`` command on chdb; both client calls are wrapped, so the simulated fault hits
    the real insert whichever path is in use.
    """
    real_arrow, real_command = client.insert_arrow, client.command

    def insert_arrow(table: str, arrow: Any, **kw: Any) -> Any:
        return hook(table, lambda: real_arrow(table, arrow, **kw))

    def command(sql: str, *args: Any, **kw: Any) -> Any:
        match = _INSERT_INTO.match(sql)
        if match is None or "Python(" not in sql:
            return real_command(sql, *args, **kw)
        return hook(match.group(1), lambda: real_command(sql, *args, **kw))

    client.insert_arrow = insert_arrow
    client.command = command


def _write_all(sink: ClickHouseSink, data: Scenario, every: int = 10_000) -> None:
    records = [*data.facts, *data.events]
    for i, (record, pos) in enumerate(records, start=1):
        sink.add(record, pos)
        if i % every == 0:
            sink.flush()
    sink.flush()


@pytest.fixture
def reference(sink_factory: SinkFactory) -> Callable[[Scenario], dict[str, Any]]:
    """``reference(data)`` → snapshot of a database that received ``data`` once, no faults."""

    def make(data: Scenario) -> dict[str, Any]:
        sink = sink_factory()
        stop_merges(sink.client)
        sink.upsert_clients(directory(), version=1)
        _write_all(sink, data)
        for d in _deliveries():
            sink.add_delivery(d)
        sink.flush()
        return snapshot(sink.client)

    return make


def test_migrations_apply_once(ch_settings: Callable[..., ClickHouseSettings]) -> None:
    settings = ch_settings()
    client = connect(settings)
    try:
        first = migrate.migrate(client, settings.database)
        second = migrate.migrate(client, settings.database)
        assert [m.version for m in first] == [m.version for m in migrate.load()]
        assert second == []
        ledger = client.query("SELECT version, checksum FROM schema_migrations").result_rows
        assert sorted(ledger) == sorted((m.version, m.checksum) for m in migrate.load())
        engines = client.query(
            "SELECT name, engine_full FROM system.tables "
            "WHERE database = currentDatabase() AND engine LIKE '%MergeTree'"
        ).result_rows
        assert {n for n, _ in engines} == {
            "interactions", "sla_facts", "obligations", "clients", "alert_deliveries",
            "trust_history", "trust_changes", "sla_daily", "interactions_daily",
            "interactions_monthly",
            "client_activity", "obligations_owed", "client_chases",
            "schema_migrations",
        }  # fmt: skip
        missing = [n for n, e in engines if "non_replicated_deduplication_window" not in e]
        assert missing == []
        edited = [replace(m, sql=m.sql + "\n-- edited\n") for m in migrate.load()]
        with pytest.raises(ConfigError, match="changed after it was applied"):
            migrate.migrate(client, settings.database, edited)
    finally:
        client.close()


def test_same_batch_twice_leaves_no_duplicates(
    sink_factory: SinkFactory,
    ch_settings: Callable[..., ClickHouseSettings],
    reference: Callable[[Scenario], dict[str, Any]],
) -> None:
    """Records without positions: only the dedup token can stop the second copy, in the base
    tables AND in the rollups the materialized views feed."""
    data = scenario(seed=3)
    unpositioned = Scenario([(f, None) for f, _ in data.facts], [], data.truth)  # type: ignore[misc]
    want = reference(Scenario(data.facts, [], data.truth))
    settings = ch_settings()
    for attempt in range(2):
        sink = sink_factory(settings)
        if attempt == 0:
            stop_merges(sink.client)
        sink.upsert_clients(directory(), version=1)
        _write_all(sink, unpositioned)
        for d in _deliveries():
            sink.add_delivery(d)
        sink.flush()
        got = snapshot(sink.client)
        sink.close()
    # Same contents as a single write, except the positions we did not give.
    strip = lambda rows: sorted((r[:-3] for r in rows), key=repr)  # noqa: E731
    assert strip(got["sla_facts"]) == strip(want["sla_facts"])
    assert len(got["alert_deliveries"]) == 3
    for key in ("sla_daily", "client_activity", "trust_history", "clients", "obligations"):
        if key == "obligations":
            continue  # versions differ: counters instead of offsets without positions
        assert got[key] == want[key], key


def test_lost_acknowledgement_is_retried_without_duplicates(
    sink_factory: SinkFactory, reference: Callable[[Scenario], dict[str, Any]]
) -> None:
    """The server commits the insert but the answer is lost: the sink retries the same batch
    (same token), and ClickHouse drops the copy in base and rollup tables."""
    data = scenario(seed=5)
    want = reference(data)
    slept: list[float] = []
    sink = sink_factory(sleep=slept.append)
    stop_merges(sink.client)
    lost: list[str] = []

    def insert_then_drop_answer(table: str, send: Callable[[], Any]) -> Any:
        result = send()
        if table in ("sla_facts", "interactions") and table not in lost:
            lost.append(table)
            raise OperationalError("connection reset by peer (simulated after commit)")
        return result

    intercept_inserts(sink.client, insert_then_drop_answer)
    sink.upsert_clients(directory(), version=1)
    _write_all(sink, data)
    for d in _deliveries():
        sink.add_delivery(d)
    sink.flush()
    assert lost == ["interactions", "sla_facts"]
    assert slept == [0.2, 0.2]  # one backoff each
    assert snapshot(sink.client) == want


def test_crash_before_offset_commit_then_replay_is_identical(
    sink_factory: SinkFactory,
    ch_settings: Callable[..., ClickHouseSettings],
    reference: Callable[[Scenario], dict[str, Any]],
) -> None:
    data = scenario(seed=9)
    want = reference(data)
    settings = ch_settings()
    records = [*data.facts, *data.events]
    first = sink_factory(settings)
    stop_merges(first.client)
    first.upsert_clients(directory(), version=1)
    committed: dict[tuple[str, int], int] = {}
    for i, (record, pos) in enumerate(records[: len(records) * 3 // 4], start=1):
        first.add(record, pos)
        if i % 40 == 0:
            first.flush()
            if i == 40:  # the only offset commit that happened before the crash
                for _, p in records[:i]:
                    committed[(p.topic, p.partition)] = p.offset + 1
    for d in _deliveries():
        first.add_delivery(d)
    first.flush()
    first.add(*records[len(records) * 3 // 4])  # buffered, never flushed: lost in the crash
    first.close()  # the crash: no flush, no commit
    del first

    second = sink_factory(settings)
    replay = [(r, p) for r, p in records if p.offset >= committed.get((p.topic, p.partition), 0)]
    assert len(replay) > len(records) // 2  # a real replay, overlapping what was written
    for i, (record, pos) in enumerate(replay, start=1):
        second.add(record, pos)
        if i % 33 == 0:  # different batch boundaries than the first run
            second.flush()
    for d in _deliveries():  # the alert hooks re-log the same attempts
        second.add_delivery(d)
    second.flush()
    assert second.skipped > 0
    assert snapshot(second.client) == want


def test_failure_between_tables_then_replay_is_identical(
    sink_factory: SinkFactory,
    ch_settings: Callable[..., ClickHouseSettings],
    reference: Callable[[Scenario], dict[str, Any]],
) -> None:
    """Obligations were written, sla_facts was refused: the replay must neither lose nor
    double-apply the obligation updates."""
    data = scenario(seed=13)
    want = reference(data)
    settings = ch_settings()
    sink = sink_factory(settings)
    stop_merges(sink.client)
    sink.upsert_clients(directory(), version=1)
    half = len(data.facts) // 2
    for f, p in data.facts[:half]:
        sink.add_fact(f, p)
    sink.flush()

    def refuse_facts(table: str, send: Callable[[], Any]) -> Any:
        if table == "sla_facts":
            raise ValueError("simulated non-transient failure")
        return send()

    intercept_inserts(sink.client, refuse_facts)
    for f, p in data.facts[half:]:
        sink.add_fact(f, p)
    with pytest.raises(SinkError):
        sink.flush()
    sink.close()

    replay = sink_factory(settings)
    _write_all(replay, data, every=25)
    for d in _deliveries():
        replay.add_delivery(d)
    replay.flush()
    assert snapshot(replay.client) == want


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_server_raises_typed_error_promptly(sink_factory: SinkFactory) -> None:
    settings = ClickHouseSettings(url=f"https://127.0.0.1:{_closed_port()}", database="x")
    sink = sink_factory(settings, setup=False)
    started = time.monotonic()
    with pytest.raises(SinkUnavailable, match="unreachable"):
        sink.setup()
    assert time.monotonic() - started < 5


def test_closed_client_raises_typed_error(sink_factory: SinkFactory) -> None:
    data = scenario(seed=1)
    sink = sink_factory()
    sink.client.close()  # the connection dies under the sink
    f, p = data.facts[0]
    sink.add_fact(f, p)
    started = time.monotonic()
    with pytest.raises(SinkUnavailable):
        sink.flush()
    assert time.monotonic() - started < 5
    assert sink.buffered == 1  # kept for the next attempt


def test_setup_without_migrate_refuses_an_unmigrated_database(sink_factory: SinkFactory) -> None:
    sink = sink_factory(setup=False, migrate=False)
    with pytest.raises(SinkError, match="shinrai db migrate"):
        sink.setup()


def test_positions_are_skipped_only_per_partition(
    sink_factory: SinkFactory, ch_settings: Callable[..., ClickHouseSettings]
) -> None:
    data = scenario(seed=2)
    settings = ch_settings()
    sink = sink_factory(settings)
    f, _ = data.facts[0]
    assert sink.add_fact(f, Position("t", 0, 5))
    sink.flush()
    again = sink_factory(settings)  # a restarted process
    assert not again.add_fact(f, Position("t", 0, 5))
    assert not again.add_fact(f, Position("t", 0, 4))
    assert again.add_fact(f, Position("t", 0, 6))
    assert again.add_fact(f, Position("t", 1, 0))


def _add_as_kafka_values(sink: ClickHouseSink, records: list[tuple[Any, Position]]) -> None:
    """What the ClickHouse runner does per record: the value bytes, decoded to a row."""
    for record, pos in records:
        if isinstance(record, Fact):
            sink.add_fact_row(fact_row(encode(record)), pos)
        else:
            sink.add_interaction_row(interaction_row(encode(record)), pos)


def test_rows_decoded_from_kafka_values_write_what_models_write(
    sink_factory: SinkFactory, reference: Callable[[Scenario], dict[str, Any]]
) -> None:
    """The runner's path (JSON bytes → row dicts → Arrow) and the model path leave identical
    tables and rollups: retractions, obligations folded from rows, flags, timestamps."""
    data = scenario(seed=21)
    want = reference(data)
    sink = sink_factory()
    stop_merges(sink.client)
    sink.upsert_clients(directory(), version=1)
    records = [*data.facts, *data.events]
    for start in range(0, len(records), 57):  # many flushes: obligations span batches
        _add_as_kafka_values(sink, records[start : start + 57])
        sink.flush()
    for d in _deliveries():
        sink.add_delivery(d)
    sink.flush()
    assert snapshot(sink.client) == want


def test_rows_crash_then_replay_with_models_mixed_in_is_identical(
    sink_factory: SinkFactory,
    ch_settings: Callable[..., ClickHouseSettings],
    reference: Callable[[Scenario], dict[str, Any]],
) -> None:
    """Rows written, a crash before the offset commit, a replay that mixes rows and models
    in one buffer (the runner's slow path for a record the row checks refused)."""
    data = scenario(seed=23)
    want = reference(data)
    settings = ch_settings()
    records: list[tuple[Any, Position]] = [*data.facts, *data.events]
    first = sink_factory(settings)
    stop_merges(first.client)
    first.upsert_clients(directory(), version=1)
    _add_as_kafka_values(first, records[: len(records) // 2])
    first.flush()
    _add_as_kafka_values(first, records[len(records) // 2 : len(records) // 2 + 10])
    first.close()  # crash: the last 10 never flushed
    second = sink_factory(settings)
    for i, (record, pos) in enumerate(records):  # the whole log again, from offset 0
        if i % 2:
            second.add(record, pos)
        else:
            _add_as_kafka_values(second, [(record, pos)])
    for d in _deliveries():
        second.add_delivery(d)
    second.flush()
    assert second.skipped == len(records) // 2
    assert snapshot(second.client) == want
