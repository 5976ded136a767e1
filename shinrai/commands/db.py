"""``shinrai db``: ClickHouse schema migrations and named dashboard queries."""

from __future__ import annotations

import click

from shinrai.commands._params import clickhouse_options, clickhouse_settings


@click.group(name="db")
def command() -> None:
    """ClickHouse storage: migrate the schema, run named dashboard queries."""


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
@click.argument("name")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help="Query parameter")
@clickhouse_options()
def query(name: str, params: tuple[str, ...], url: str | None, database: str | None) -> None:
    """Run the named dashboard query NAME and print its rows as JSON lines."""
    import orjson

    from sinks.clickhouse.client import connect
    from sinks.clickhouse.queries import run_query

    settings = clickhouse_settings(url, database)
    bound: dict[str, str] = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--param")
        bound[key] = value
    client = connect(settings, create=False)
    try:
        rows = run_query(client, name, **bound)
    finally:
        client.close()
    for row in rows:
        click.echo(orjson.dumps(row, default=str).decode())
