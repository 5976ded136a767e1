"""``shinrai dashboard``: serve the built-in dashboard (or the one a running worker serves)."""

from __future__ import annotations

import click

from shinrai.commands._context import get_settings
from shinrai.commands._params import clickhouse_options, clickhouse_settings


@click.group("dashboard", invoke_without_command=True)
@click.option("--host", default=None, help="Address to bind [default: SHINRAI_DASHBOARD__HOST].")
@click.option(
    "--port", default=None, type=int, help="Port [default: SHINRAI_DASHBOARD__PORT, 8088]."
)
@clickhouse_options("--clickhouse")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 366))
@click.pass_context
def command(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    url: str | None,
    database: str | None,
    days: int,
) -> None:
    """Serve the dashboard (HTML at /, JSON at /api/<query>, POST /api/sql) on HOST:PORT.

    \b
    `shinrai worker` serves the dashboard itself (SHINRAI_DASHBOARD__HOST/__PORT). With
    embedded ClickHouse (chdb://) only that worker can open the data directory: beside it,
    this command says where the worker serves it, or (on another HOST:PORT) forwards to it.
    Bound to anything but loopback it requires a login: SHINRAI_DASHBOARD__BEARER_TOKENS
    (JSON list) or SHINRAI_DASHBOARD__USERS (JSON {"name": "<hash>"}, hashes from
    `shinrai dashboard hash-password`); SHINRAI_DASHBOARD__REQUIRE_AUTH=true on loopback too.
    """
    if ctx.invoked_subcommand is not None:
        return
    from shinrai.commands._worker_endpoint import auth_headers, running_endpoint

    settings = get_settings()
    dash = settings.dashboard
    bind_host = host or dash.host
    bind_port = port if port is not None else dash.port
    ch = clickhouse_settings(url, database)
    endpoint = running_endpoint(ch)
    if endpoint is None:
        from dashboard.server import build_web_app

        app = build_web_app(ch, dash, host=bind_host, default_days=days)
        what = f"database {ch.database}"
    else:
        from dashboard.auth import AccessPolicy
        from dashboard.proxy import build_proxy_app
        from dashboard.server import local_url

        if local_url(bind_host, bind_port) == endpoint.url:
            click.echo(f"the worker (pid {endpoint.pid}) serves the dashboard at {endpoint.url}/")
            return
        policy = AccessPolicy.for_binding(dash, bind_host)
        app = build_proxy_app(endpoint.url, auth_headers(endpoint, dash), policy)
        what = f"forwarding to the worker (pid {endpoint.pid}) at {endpoint.url}"
    _serve(app, bind_host, bind_port, what)


def _serve(app: object, host: str, port: int, what: str) -> None:
    import uvicorn

    from dashboard.server import bind, local_url

    sock = bind(host, port)
    port = sock.getsockname()[1]
    click.echo(f"dashboard on {local_url(host, port)}/ ({what})", err=True)
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        log_level="warning",
        access_log=False,
        log_config=None,
        lifespan="off",
        server_header=False,
    )
    uvicorn.Server(config).run(sockets=[sock])


@command.command("hash-password")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="The password (prompted without echo when not given).",
)
def hash_password_command(password: str) -> None:
    """Print the scrypt hash of a password for SHINRAI_DASHBOARD__USERS."""
    from dashboard.auth import hash_password

    click.echo(hash_password(password))
