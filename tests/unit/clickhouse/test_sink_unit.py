"""Sink pieces that need no ClickHouse: URLs, tokens, buffering, migration files."""

from __future__ import annotations

import os
import random
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from schemas.facts import Fact, FactKind
from shinrai.errors import ConfigError, SinkBackpressure
from shinrai.settings import ClickHouseSettings
from sinks.clickhouse import migrate
from sinks.clickhouse import sink as sink_module
from sinks.clickhouse.client import parse_url
from sinks.clickhouse.rows import Position, facts_table
from sinks.clickhouse.sink import ClickHouseSink, batch_token

pytestmark = pytest.mark.unit

F = Fact(fact_id="f", kind=FactKind.SILENCE, client_id="c", at=datetime(2025, 1, 1, tzinfo=UTC),
         policy_id="p", policy_version=1)  # fmt: skip


def test_parse_url() -> None:
    assert parse_url("chdb:///var/lib/shinrai").path == "/var/lib/shinrai"
    server = parse_url("https://ch.example")
    assert (server.host, server.port, server.secure) == ("ch.example", 8443, True)
    assert parse_url("http://h:9000").port == 9000
    for bad in ("mysql://x", "https://user:pw@h", "chdb://", "https://"):
        with pytest.raises(ConfigError):
            parse_url(bad)


def test_batch_token_depends_on_ranges_only() -> None:
    a = [Position("t", 0, 5), Position("t", 0, 6), Position("t", 1, 9)]
    assert batch_token("x", a, ["1", "2", "3"]) == batch_token(
        "x", list(reversed(a)), ["3", "2", "1"]
    )
    assert batch_token("x", a, "abc") != batch_token("x", a[:2], "ab")
    assert batch_token("x", a, "abc") != batch_token("y", a, "abc")
    loose = [None, None]
    assert batch_token("x", loose, ["a", "b"]) == batch_token("x", loose, ["a", "b"])
    assert batch_token("x", loose, ["a", "b"]) != batch_token("x", loose, ["a", "c"])


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_should_flush_by_size_and_age_and_backpressure() -> None:
    clock = Clock()
    settings = ClickHouseSettings(url="chdb:///nonexistent", batch_rows=3, batch_age_s=2.0)
    sink = ClickHouseSink(settings, clock=clock, max_buffer_rows=5)  # no I/O in the constructor
    assert not sink.should_flush()
    sink.add_fact(F, Position("t", 0, 0))
    assert not sink.should_flush()
    clock.now += 2.0
    assert sink.should_flush()  # age
    clock.now -= 2.0
    sink.add_fact(F, Position("t", 0, 1))
    sink.add_fact(F, Position("t", 0, 2))
    assert sink.should_flush()  # size
    sink.add_fact(F)
    sink.add_fact(F)
    with pytest.raises(SinkBackpressure):
        sink.add_fact(F)
    assert sink.buffered == 5


def test_migration_files_split_into_statements() -> None:
    [first] = [m for m in migrate.load() if m.version == 1]
    statements = first.statements("db_x")
    assert all("{db}" not in s and not s.rstrip().endswith(";") for s in statements)
    creates = [s for s in statements if s.startswith("CREATE TABLE")]
    assert len(creates) == 8
    assert all("non_replicated_deduplication_window" in s for s in creates)
    assert sum(s.startswith("CREATE MATERIALIZED VIEW") for s in statements) == 3


def test_facts_table_has_every_fact_field() -> None:
    table = facts_table([F], [None], {})
    assert set(Fact.model_fields) <= set(table.column_names)
    assert table.column("offset").to_pylist() == [-1]


def test_inline_settings_are_quoted_and_names_checked() -> None:
    from sinks.clickhouse.sink import settings_clause

    clause = settings_clause({"async_insert": 0, "insert_deduplication_token": "t:ab'c\\"})
    assert clause == "async_insert = 0, insert_deduplication_token = 't:ab\\'c\\\\'"
    with pytest.raises(ValueError, match="bad setting name"):
        settings_clause({"x = 1; DROP": 1})


def test_batch_files_of_dead_writers_are_removed_and_live_ones_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A worker killed mid-flush leaves its JSONEachRow batch file (in RAM under /dev/shm);
    the next sink set up on the machine removes it, never a live worker's file."""
    monkeypatch.setattr(sink_module, "_batch_dir", lambda: str(tmp_path))
    dead_pid = _exited_pid()
    dead = tmp_path / f"shinrai-batch-{dead_pid}-abc.jsonl"
    live = tmp_path / f"shinrai-batch-{os.getpid()}-def.jsonl"
    other = tmp_path / "unrelated.jsonl"
    for path in (dead, live, other):
        path.write_bytes(b"{}\n")
    assert sink_module.remove_stale_batch_files() == 1
    assert not dead.exists()
    assert live.exists()
    assert other.exists()


def _exited_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize(
    "kind",
    [pa.timestamp("us", tz="UTC"), pa.timestamp("us", tz="Europe/Paris"), pa.timestamp("ms"),
     pa.int64(), pa.string()],
)  # fmt: skip
def test_fold_columns_convert_as_to_pylist_does(kind: pa.DataType) -> None:
    """Values, None, tzinfo and all: the fold's fast timestamp conversion is to_pylist's."""
    rng = random.Random(5)
    micros = [rng.randrange(-(2**40), 2**52) for _ in range(500)]
    micros += [0, -1, 1, 253402214400000000, -62135596800000000]  # epoch, years 9999 and 1
    values: list[Any] = [None if i % 7 == 0 else m for i, m in enumerate(micros)]
    if kind == pa.string():
        values = [None if v is None else str(v) for v in values]
    elif kind == pa.timestamp("ms"):
        values = [None if v is None else v // 1000 for v in values]
    column = pa.chunked_array(
        [pa.array(values[:300]).cast(kind), pa.array(values[300:]).cast(kind)]
    )
    got, want = sink_module._python_column(column), column.to_pylist()
    assert got == want
    assert [getattr(v, "tzinfo", None) for v in got] == [getattr(v, "tzinfo", None) for v in want]
