"""Read-only ad-hoc SQL: the statement check, the guarded run, and ``POST /api/sql``.

Two guards, either enough to refuse a write:

1. ``check_statement``: one statement (a trailing ``;`` is fine) whose first word is
   SELECT, WITH, SHOW, DESCRIBE/DESC, EXPLAIN or EXISTS, and no ``INTO OUTFILE`` (chdb writes
   that file even in read-only mode). Comments and string literals are skipped, so a keyword
   inside a string neither passes nor fails a statement. The refusal is one line.
2. ClickHouse itself: the client that runs these statements is its own (never the sink's nor
   the dashboard's), its session is set ``readonly = 1`` before its first statement and every
   statement carries the same settings: no INSERT, DDL, SET, ``SETTINGS`` override or table
   function (``file()``, ``url()``...). ``max_execution_time`` and ``max_result_rows`` (with
   ``result_overflow_mode = 'break'``) bound the work; rows beyond ``max_rows`` are cut and
   the answer says ``truncated``.

The statement text is never logged (it may name clients); only its size and the row count are.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson

from shinrai.errors import ShinraiError
from shinrai.logging import get_logger

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client
    from starlette.requests import Request
    from starlette.responses import Response

log = get_logger("dashboard.sql")

READ_KEYWORDS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS"})
MAX_SQL_BYTES = 100_000
_TOKEN = re.compile(
    r"""
      (?P<comment>--[^\n]*|\#[^\n]*|/\*.*?\*/)
    | (?P<string>'(?:[^'\\]|\\.|'')*')
    | (?P<quoted>"(?:[^"\\]|\\.|"")*"|`(?:[^`\\]|\\.|``)*`)
    | (?P<semicolon>;)
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<other>\S)
    """,
    re.VERBOSE | re.DOTALL,
)


class StatementRefused(ShinraiError):
    """The statement is not a single read-only query (the message says why, in one line)."""


def check_statement(sql: str) -> str:
    """``sql`` (without a trailing ``;`` or comment) if it is one read-only statement.

    Anything else raises StatementRefused with a one-line reason.
    """
    if len(sql.encode("utf-8")) > MAX_SQL_BYTES:
        raise StatementRefused(f"refused: the statement is longer than {MAX_SQL_BYTES} bytes")
    words: list[str] = []
    after_semicolon = False
    end = 0  # where the statement's last token ends (trailing ';' and comments are left out)
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup
        if kind == "comment":
            continue
        if kind == "semicolon":
            after_semicolon = True
            continue
        if after_semicolon:
            raise StatementRefused("refused: one statement at a time (found text after ';')")
        end = match.end()
        if kind == "word":
            words.append(match.group().upper())
        elif kind in ("string", "quoted"):
            words.append("")  # a literal or identifier: never a keyword
        else:
            words.append(match.group())
    if not words:
        raise StatementRefused("refused: empty statement")
    first = words[0]
    if first not in READ_KEYWORDS:
        shown = first if first.isidentifier() else repr(first)
        raise StatementRefused(
            f"refused: read-only endpoint, {shown} is not allowed "
            f"(use {', '.join(sorted(READ_KEYWORDS))})"
        )
    for a, b in itertools.pairwise(words):
        if a == "INTO" and b == "OUTFILE":
            raise StatementRefused("refused: read-only endpoint, INTO OUTFILE is not allowed")
    return sql[:end].strip()


def readonly_settings(max_rows: int, timeout_s: float) -> dict[str, Any]:
    """The settings of every guarded statement; ``readonly`` last (it freezes the others)."""
    return {
        "max_execution_time": max(1, round(timeout_s)),
        "max_result_rows": max_rows + 1,
        "result_overflow_mode": "break",
        "readonly": 1,
    }


def make_readonly(client: Client, max_rows: int, timeout_s: float) -> Client:
    """Set ``client``'s session read-only (and bounded); return it."""
    for name, value in readonly_settings(max_rows, timeout_s).items():
        literal = f"'{value}'" if isinstance(value, str) else str(value)
        client.command(f"SET {name} = {literal}")
    return client


@dataclass(frozen=True)
class SqlResult:
    """Columns (names and ClickHouse types), rows as JSON-ready lists, and whether cut."""

    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    truncated: bool

    def as_json(self) -> dict[str, Any]:
        """The ``/api/sql`` answer body."""
        return {
            "columns": self.columns,
            "types": self.types,
            "rows": self.rows,
            "row_count": len(self.rows),
            "truncated": self.truncated,
        }


def plain(value: Any) -> Any:
    """A ClickHouse value as JSON: times in ISO-8601, decimals, UUIDs and addresses as text."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal | UUID | IPv4Address | IPv6Address):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def describe_error(exc: Exception) -> str:
    """One line for a ClickHouse error (read-only refusals say so plainly)."""
    text = " ".join(str(exc).split())
    if "(READONLY)" in text or "readonly mode" in text:
        return "refused: read-only endpoint (ClickHouse readonly = 1 forbids this statement)"
    text = re.sub(r"^(Code: \d+\. )?(DB::Exception: )?", "", text)
    # chdb echoes the statement with our SETTINGS appended: cut from there.
    text = re.split(r"\s+SETTINGS max_execution_time", text)[0]
    return text[:400]


def run_sql(client: Client, sql: str, *, max_rows: int, timeout_s: float) -> SqlResult:
    """Check and run ``sql`` on a read-only ``client`` (StatementRefused / ShinraiError)."""
    statement = check_statement(sql)
    try:
        result = client.query(statement, settings=readonly_settings(max_rows, timeout_s))
    except ShinraiError:
        raise
    except Exception as exc:
        raise StatementRefused(describe_error(exc)) from exc
    rows = result.result_rows
    return SqlResult(
        columns=list(result.column_names),
        types=[t.name for t in result.column_types],
        rows=[[plain(v) for v in row] for row in rows[:max_rows]],
        truncated=len(rows) > max_rows,
    )


class ReadOnlyClient:
    """One lazily opened read-only client, one statement at a time, reopened after a failure."""

    def __init__(self, factory: Callable[[], Client], *, max_rows: int, timeout_s: float) -> None:
        """``factory`` opens a client on the database; it is made read-only here."""
        self._factory = factory
        self.max_rows = max_rows
        self.timeout_s = timeout_s
        self._client: Client | None = None
        self._lock = threading.Lock()

    def run(self, sql: str) -> SqlResult:
        """:func:`run_sql` on the client (opened on first use)."""
        with self._lock:
            if self._client is None:
                self._client = make_readonly(self._factory(), self.max_rows, self.timeout_s)
            try:
                return run_sql(self._client, sql, max_rows=self.max_rows, timeout_s=self.timeout_s)
            except StatementRefused:
                raise
            except Exception:
                self._close()
                raise

    def _close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def close(self) -> None:
        """Close the client (the next statement opens a new one)."""
        with self._lock:
            self._close()


async def _statement_of(request: Request) -> str:
    body = await request.body()
    if len(body) > MAX_SQL_BYTES + 1024:
        raise StatementRefused(f"refused: the request is longer than {MAX_SQL_BYTES} bytes")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise StatementRefused('bad request: expected JSON {"sql": "SELECT ..."}') from None
        sql = payload.get("sql") if isinstance(payload, dict) else None
        if not isinstance(sql, str):
            raise StatementRefused('bad request: expected JSON {"sql": "SELECT ..."}')
        return sql
    return body.decode("utf-8", "replace")


def sql_endpoint(reader: ReadOnlyClient) -> Callable[[Request], Any]:
    """The ``POST /api/sql`` handler: body ``{"sql": "..."}`` (or the SQL as plain text).

    200 with columns, types, rows, row_count, truncated; 400 with one ``error`` line for a
    refused or failing statement; 503 while the database does not exist yet (worker starting).
    """
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import Response

    def answer(status: int, body: dict[str, Any]) -> Response:
        return Response(orjson.dumps(body), status_code=status, media_type="application/json")

    async def handle(request: Request) -> Response:
        started = time.perf_counter()
        sql = ""
        try:
            sql = await _statement_of(request)
            result = await run_in_threadpool(reader.run, sql)
        except StatementRefused as exc:
            log.info("sql_refused", bytes=len(sql))
            return answer(400, {"error": str(exc)})
        except ShinraiError as exc:
            message = " ".join(str(exc).split())
            if "does not exist" in message or "unreachable" in message:
                return answer(503, {"error": f"starting: {message}"})
            return answer(500, {"error": message[:400]})
        log.info(
            "sql_answered",
            bytes=len(sql),
            rows=len(result.rows),
            truncated=result.truncated,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return answer(200, result.as_json())

    return handle
