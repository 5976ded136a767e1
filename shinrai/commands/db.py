"""``shinrai db``: ClickHouse schema migrations and named dashboard queries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from shinrai.commands._context import get_settings
from shinrai.commands._params import clickhouse_options, clickhouse_settings

if TYPE_CHECKING:
    from dashboard.sql_api import SqlResult
    from shinrai.settings import ClickHouseSettings


@click.group(name="db")
def command() -> None:
    """ClickHouse storage: migrate the schema, run named dashboard queries or read-only SQL."""


@command.command()
@clickhouse_options()
def migrate(url: str | None, database: str | None) -> None:
    """Apply pending migrations (sinks/clickhouse/sql/migrations, package data); idempotent."""
    from sinks.clickhouse import migrate as mig
    from sinks.clickhouse.client import connect, parse_url

    settings = clickhouse_settings(url, database)
    client = connect(settings)
    try:
        applied = mig.migrate(client, settings.database)
    finally:
        client.close()
    where = f"{parse_url(settings.url).describe()} database {settings.database}"
    if applied:
        for m in applied:
            click.echo(f"applied {m.version:04d}_{m.name} ({m.checksum[:12]})")
    else:
        click.echo(f"up to date: {where}")


@command.command()
@click.argument("name", required=False)
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help="Query parameter")
@click.option(
    "--sql",
    default=None,
    metavar="STATEMENT",
    help="Run this read-only statement (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, EXISTS) instead "
    "of a named query; anything else is refused.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "jsonl", "csv"]),
    default=None,
    help="Output [default: table for --sql, jsonl for a named query].",
)
@clickhouse_options()
def query(
    name: str | None,
    params: tuple[str, ...],
    sql: str | None,
    fmt: str | None,
    url: str | None,
    database: str | None,
) -> None:
    """Run the named dashboard query NAME, or an ad-hoc read-only --sql statement.

    \b
    Beside a running `shinrai worker` that holds the embedded ClickHouse (chdb) directory,
    the question goes to the worker's dashboard endpoint (POST /api/sql, GET /api/NAME);
    otherwise this process opens the database itself (chdb, or a ClickHouse server).
    Examples:
      shinrai db query --sql "SELECT kind, count() FROM sla_facts GROUP BY kind"
      shinrai db query --sql "SHOW TABLES" --format csv
      shinrai db query client_attainment -p since=2026-03-01 -p until=2026-04-01
    """
    from shinrai.commands._tables import render
    from shinrai.commands._worker_endpoint import (
        auth_headers,
        get_named,
        post_sql,
        running_endpoint,
    )

    if (name is None) == (sql is None):
        raise click.UsageError("give either a query NAME or --sql STATEMENT")
    settings = clickhouse_settings(url, database)
    bound: dict[str, str] = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--param")
        bound[key] = value
    endpoint = running_endpoint(settings)
    headers = auth_headers(endpoint, get_settings().dashboard) if endpoint else {}
    columns: list[str]
    rows: list[list[Any]]
    truncated = False
    if sql is not None:
        if bound:
            raise click.UsageError("--param goes with a named query, not --sql")
        if endpoint is not None:
            answer = post_sql(endpoint, headers, sql)
            columns, rows, truncated = answer["columns"], answer["rows"], answer["truncated"]
        else:
            result = _run_sql_here(settings, sql)
            columns, rows, truncated = result.columns, result.rows, result.truncated
    else:
        assert name is not None
        if endpoint is not None:
            records = get_named(endpoint, headers, name, bound)
        else:
            records = _run_named_here(settings, name, bound)
        columns = list(records[0]) if records else []
        rows = [list(r.values()) for r in records]
    output = render(columns, rows, fmt or ("table" if sql is not None else "jsonl"))
    if output:
        click.echo(output)
    if truncated:
        limit = get_settings().dashboard.sql_max_rows
        click.echo(
            f"(cut at {limit} rows: SHINRAI_DASHBOARD__SQL_MAX_ROWS, or add a LIMIT)", err=True
        )


def _run_sql_here(settings: ClickHouseSettings, sql: str) -> SqlResult:
    """The statement on a read-only client of this process (chdb directory or server)."""
    from dashboard.sql_api import check_statement, make_readonly, run_sql
    from sinks.clickhouse.client import connect

    dash = get_settings().dashboard
    check_statement(sql)  # refused before the database is even opened
    client = connect(settings, create=False)
    try:
        make_readonly(client, dash.sql_max_rows, dash.sql_timeout_s)
        return run_sql(client, sql, max_rows=dash.sql_max_rows, timeout_s=dash.sql_timeout_s)
    finally:
        client.close()


def _run_named_here(
    settings: ClickHouseSettings, name: str, params: dict[str, str]
) -> list[dict[str, Any]]:
    from sinks.clickhouse.client import connect
    from sinks.clickhouse.queries import run_query

    client = connect(settings, create=False)
    try:
        return run_query(client, name, **params)
    finally:
        client.close()
