"""``shinrai db``: ClickHouse schema migrations and named dashboard queries."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from shinrai.settings import ClickHouseSettings


def _settings(url: str | None, database: str | None) -> ClickHouseSettings:
    from shinrai.settings import Settings

    base = Settings().clickhouse
    return base.model_copy(
        update={k: v for k, v in {"url": url, "database": database}.items() if v is not None}
    )


_url = click.option(
    "--url",
    default=None,
    help="chdb:///path (embedded) or https://host:8443; default from settings",
)
_database = click.option("--database", default=None, help="Target database; default from settings")


@click.group(name="db")
def command() -> None:
    """ClickHouse storage: migrate the schema, run named dashboard queries."""


@command.command()
@_url
@_database
def migrate(url: str | None, database: str | None) -> None:
    """Apply pending migrations (sinks/clickhouse/sql/migrations, package data); idempotent."""
    from shinrai.errors import ShinraiError
    from sinks.clickhouse import migrate as mig
    from sinks.clickhouse.client import connect, parse_url

    settings = _settings(url, database)
    try:
        client = connect(settings)
        try:
            applied = mig.migrate(client, settings.database)
        finally:
            client.close()
    except ShinraiError as exc:
        raise click.ClickException(str(exc)) from exc
    where = f"{parse_url(settings.url).describe()} database {settings.database}"
    if applied:
        for m in applied:
            click.echo(f"applied {m.version:04d}_{m.name} ({m.checksum[:12]})")
    else:
        click.echo(f"up to date: {where}")


@command.command()
@click.argument("name")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help="Query parameter")
@_url
@_database
def query(name: str, params: tuple[str, ...], url: str | None, database: str | None) -> None:
    """Run the named dashboard query NAME and print its rows as JSON lines."""
    import orjson

    from shinrai.errors import ShinraiError
    from sinks.clickhouse.client import connect
    from sinks.clickhouse.queries import run_query

    settings = _settings(url, database)
    bound: dict[str, str] = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--param")
        bound[key] = value
    try:
        client = connect(settings, create=False)
        try:
            rows = run_query(client, name, **bound)
        finally:
            client.close()
    except ShinraiError as exc:
        raise click.ClickException(str(exc)) from exc
    for row in rows:
        click.echo(orjson.dumps(row, default=str).decode())
