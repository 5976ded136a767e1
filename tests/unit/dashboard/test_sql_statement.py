"""The read-only statement check of /api/sql and `shinrai db query --sql`, and its output."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from uuid import UUID

import pytest

from dashboard.sql_api import (
    StatementRefused,
    check_statement,
    describe_error,
    plain,
    readonly_settings,
)
from shinrai.commands._tables import render

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "  select * from sla_facts where client_id = 'x'  ;  ",
        "WITH 1 AS a SELECT a",
        "SHOW TABLES",
        "DESCRIBE TABLE clients",
        "desc clients",
        "EXPLAIN SELECT 1",
        "EXISTS TABLE clients",
        "-- why\nSELECT 1",
        "/* a; DROP TABLE x */ SELECT 1",
        "SELECT 'a; DROP TABLE x' AS s",
        "SELECT 'it''s; INSERT' AS s",
        'SELECT "INTO" FROM t',
        "SELECT 1 -- INTO OUTFILE 'x'",
        "SELECT 1 ; -- a note after the statement",
    ],
)
def test_reads_pass(sql: str) -> None:
    statement = check_statement(sql)
    assert not statement.endswith(";")
    assert statement.strip() == statement


def test_trailing_semicolons_and_comments_are_left_out() -> None:
    assert check_statement("SELECT 1 ; -- a note") == "SELECT 1"
    assert check_statement("SELECT 1 -- INTO OUTFILE 'x'") == "SELECT 1"
    assert check_statement("  SELECT ';' ;;  ") == "SELECT ';'"


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("INSERT INTO clients VALUES (1)", "INSERT is not allowed"),
        ("drop table clients", "DROP is not allowed"),
        ("ALTER TABLE t DELETE WHERE 1", "ALTER is not allowed"),
        ("SET readonly = 0", "SET is not allowed"),
        ("SYSTEM SHUTDOWN", "SYSTEM is not allowed"),
        ("/* SELECT */ TRUNCATE TABLE t", "TRUNCATE is not allowed"),
        ("SELECT 1; DROP TABLE t", "one statement at a time"),
        ("SELECT 1;;SELECT 2", "one statement at a time"),
        ("SELECT * FROM t INTO OUTFILE '/tmp/x'", "INTO OUTFILE"),
        ("select * from t into   outfile 'x'", "INTO OUTFILE"),
        ("", "empty statement"),
        ("  -- nothing\n ; ", "empty statement"),
        ("(SELECT 1)", "'(' is not allowed"),
    ],
)
def test_writes_and_tricks_are_refused_in_one_line(sql: str, why: str) -> None:
    with pytest.raises(StatementRefused) as refused:
        check_statement(sql)
    message = str(refused.value)
    assert message.startswith("refused: ")
    assert why in message
    assert "\n" not in message


def test_readonly_comes_last() -> None:
    settings = readonly_settings(100, 2.4)
    assert list(settings)[-1] == "readonly"
    assert settings["readonly"] == 1
    assert settings["max_result_rows"] == 101  # one more than shown: "truncated" is known
    assert settings["max_execution_time"] == 2


def test_errors_read_as_one_line() -> None:
    assert describe_error(Exception("Code: 164. DB::Exception: Cannot modify x (READONLY)")) == (
        "refused: read-only endpoint (ClickHouse readonly = 1 forbids this statement)"
    )
    text = describe_error(
        Exception("Code: 60. DB::Exception: Unknown table 'x'.\nIn scope SELECT * FROM x "
                  "SETTINGS max_execution_time = '30', readonly = '1' FORMAT Native")
    )  # fmt: skip
    assert text == "Unknown table 'x'. In scope SELECT * FROM x"


def test_values_become_json() -> None:
    row = [dt.datetime(2026, 3, 4, 5, 6, tzinfo=dt.UTC), Decimal("1.50"),
           UUID(int=1), [dt.date(2026, 1, 2)], {"k": b"v"}, None, 3]  # fmt: skip
    assert json.loads(json.dumps(plain(row))) == [
        "2026-03-04T05:06:00+00:00", "1.50", "00000000-0000-0000-0000-000000000001",
        ["2026-01-02"], {"k": "v"}, None, 3,
    ]  # fmt: skip


def test_output_formats() -> None:
    columns = ["client", "breaches", "note"]
    rows = [["acme", 12, "a,b"], ["beta-long-name", 3, None]]
    table = render(columns, rows, "table").splitlines()
    assert table[0].split() == columns
    assert table[2].split() == ["acme", "12", "a,b"]
    # Numbers align right, text left, under the header.
    assert table[2].index("12") + 2 == table[3].index("3") + 1
    assert table[3].endswith("NULL")
    assert render(columns, rows, "csv").splitlines() == [
        "client,breaches,note",
        'acme,12,"a,b"',
        "beta-long-name,3,",
    ]
    assert json.loads(render(columns, rows, "json")) == [
        {"client": "acme", "breaches": 12, "note": "a,b"},
        {"client": "beta-long-name", "breaches": 3, "note": None},
    ]
    assert [json.loads(x) for x in render(columns, rows, "jsonl").splitlines()][1]["breaches"] == 3
    assert render(["x"], [], "table").splitlines() == ["x", "-"]
