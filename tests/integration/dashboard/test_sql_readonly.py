"""POST /api/sql on a real embedded ClickHouse: reads answer, writes are refused, limits hold.

The endpoint's client is its own read-only session: the test checks that a write through the
endpoint fails even when the statement check is bypassed (ClickHouse's ``readonly = 1``), and
that the read-only session does not leak into another client on the same chdb engine (the
sink's inserts must keep working).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from dashboard.server import DashboardServer, build_web_app
from dashboard.sql_api import ReadOnlyClient, StatementRefused, make_readonly
from shinrai.settings import ClickHouseSettings, DashboardSettings
from sinks.clickhouse.client import connect

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def clickhouse(chdb_dir: Path) -> Iterator[ClickHouseSettings]:
    settings = ClickHouseSettings(url=f"chdb://{chdb_dir}", database=f"r_{uuid.uuid4().hex[:12]}")
    client = connect(settings)
    client.command("CREATE TABLE notes (n UInt32, text String) ENGINE = MergeTree ORDER BY n")
    client.command("INSERT INTO notes VALUES (1, 'one'), (2, 'two'), (3, 'three')")
    client.close()
    return settings


@pytest.fixture
async def served(clickhouse: ClickHouseSettings) -> AsyncIterator[str]:
    dashboard = DashboardSettings(sql_max_rows=5)
    server = DashboardServer(build_web_app(clickhouse, dashboard, host="127.0.0.1"), "127.0.0.1", 0)
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()


async def test_reads_answer_like_clickhouse_and_writes_are_refused(
    served: str, clickhouse: ClickHouseSettings
) -> None:
    plain = connect(clickhouse, create=False)
    try:
        async with httpx.AsyncClient(base_url=served, timeout=30) as http:
            statement = "SELECT n, text, toDate('2026-03-04') AS d FROM notes ORDER BY n"
            answer = await http.post("/api/sql", json={"sql": statement})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            expected = plain.query(statement)
            assert body["columns"] == list(expected.column_names)
            assert body["types"] == ["UInt32", "String", "Date"]
            assert body["rows"] == [[n, t, d.isoformat()] for n, t, d in expected.result_rows]
            assert body["truncated"] is False
            # The SQL as a plain-text body works too.
            text = await http.post("/api/sql", content=b"SHOW TABLES")
            assert text.json()["rows"] == [["notes"]]

            cut = await http.post("/api/sql", json={"sql": "SELECT number FROM numbers(50)"})
            assert cut.json()["row_count"] == 5
            assert cut.json()["truncated"] is True

            for write in (
                "INSERT INTO notes VALUES (9, 'nine')",
                "ALTER TABLE notes DELETE WHERE 1",
                "DROP TABLE notes",
                "SELECT 1; DROP TABLE notes",
                "SELECT * FROM notes SETTINGS readonly = 0",
                "SELECT * FROM file('/etc/hostname', 'LineAsString')",
                "SELECT * FROM notes INTO OUTFILE 'stolen.csv'",
                "SET readonly = 0",
            ):
                refused = await http.post("/api/sql", json={"sql": write})
                assert refused.status_code == 400, (write, refused.text)
                error = refused.json()["error"]
                assert error.startswith("refused: "), (write, error)
                assert "\n" not in error
            bad = await http.post("/api/sql", json={"sql": "SELECT nope FROM notes"})
            assert bad.status_code == 400
            assert "nope" in bad.json()["error"]
        assert plain.query("SELECT count() FROM notes").result_rows == [(3,)]
        # The endpoint's read-only session is its own: this client still writes.
        plain.command("INSERT INTO notes VALUES (4, 'four')")
        assert plain.query("SELECT count() FROM notes").result_rows == [(4,)]
        plain.command("ALTER TABLE notes DELETE WHERE n = 4 SETTINGS mutations_sync = 1")
    finally:
        plain.close()


def test_clickhouse_refuses_a_write_the_statement_check_would_let_through(
    clickhouse: ClickHouseSettings,
) -> None:
    """The second guard alone: a write sent straight to the read-only session fails."""
    client = make_readonly(connect(clickhouse, create=False), max_rows=10, timeout_s=5)
    try:
        with pytest.raises(Exception, match="readonly"):
            client.command("INSERT INTO notes VALUES (8, 'eight')")
        with pytest.raises(Exception, match="readonly"):
            client.query("SELECT * FROM file('/etc/hostname', 'LineAsString')")
    finally:
        client.close()
    reader = ReadOnlyClient(lambda: connect(clickhouse, create=False), max_rows=10, timeout_s=5)
    try:
        with pytest.raises(StatementRefused, match="readonly = 1"):
            # Passes the first word check; ClickHouse refuses the table function.
            reader.run("WITH 1 AS x SELECT * FROM url('http://127.0.0.1:9/', 'CSV', 'a String')")
        assert reader.run("SELECT count() AS c FROM notes").rows == [[3]]
    finally:
        reader.close()
    check = connect(clickhouse, create=False)
    try:
        assert check.query("SELECT count() FROM notes").result_rows == [(3,)]
    finally:
        check.close()
