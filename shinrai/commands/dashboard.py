"""``shinrai dashboard``: serve the built-in dashboard against the configured ClickHouse."""

from __future__ import annotations

import click

from shinrai.commands._params import clickhouse_options, clickhouse_settings


@click.command("dashboard")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8088, show_default=True, type=int, help="Port to listen on.")
@clickhouse_options("--clickhouse")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 366))
def command(host: str, port: int, url: str | None, database: str | None, days: int) -> None:
    """Serve the dashboard (HTML at /, JSON at /api/<query>) on HOST:PORT.

    With embedded ClickHouse (chdb://) the data directory can be opened by one process only:
    while `shinrai worker` runs in embedded mode it serves the dashboard itself; run this
    command against a ClickHouse server, or against a chdb directory no other process holds.
    """
    import uvicorn

    from dashboard import create_app

    settings = clickhouse_settings(url, database)
    app = create_app(settings=settings, default_days=days)
    click.echo(f"dashboard on http://{host}:{port}/ (database {settings.database})", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
