"""The served dashboard: the pages and named queries, ``POST /api/sql``, the login, uvicorn.

``build_web_app`` puts the read-only SQL endpoint (``dashboard.sql_api``) beside the dashboard
app (``dashboard.app``) behind the access policy of the address it binds (``dashboard.auth``).
``DashboardServer`` runs it inside the caller's event loop (the worker's, or the one of
``shinrai dashboard``) on a socket it binds itself, so a taken port is one clear error and
port 0 gives a free one. uvicorn's access log is off and its loggers go through Shinrai's
logging (redaction): a request line carries client ids in query strings, and the SQL
endpoint's statements never reach a log.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import uvicorn

from dashboard.auth import AccessPolicy, AuthMiddleware
from dashboard.sql_api import ReadOnlyClient, sql_endpoint
from shinrai.errors import ConfigError
from shinrai.logging import get_logger

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client
    from starlette.applications import Starlette
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from shinrai.settings import ClickHouseSettings, DashboardSettings

log = get_logger("dashboard.server")


class QuietErrors:
    """ASGI middleware: an unhandled error answers 500 and logs its type and path only.

    uvicorn would log the traceback, whose messages can carry a statement, its parameters or
    a client id from the query string; the log gets the exception class and the bare path.
    """

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; turn an escaping exception into a quiet 500."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.error("dashboard_request_failed", path=scope["path"], error=type(exc).__name__)
            if started:
                return
            body = b'{"error": "internal error (see the server log)"}'
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})


def build_web_app(
    clickhouse: ClickHouseSettings,
    dashboard: DashboardSettings,
    *,
    host: str,
    client_factory: Callable[[], Client] | None = None,
    default_days: int = 30,
    clock: Callable[[], datetime] | None = None,
    **app_options: Any,
) -> Starlette:
    """The dashboard with ``/api/sql``, guarded by the policy for ``host`` (ConfigError if unusable).

    ``app_options`` go to :func:`dashboard.app.create_app` as they are.
    """
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Mount, Route

    from dashboard.app import create_app
    from sinks.clickhouse.client import connect

    policy = AccessPolicy.for_binding(dashboard, host)
    if client_factory is None:

        def client_factory() -> Client:
            return connect(clickhouse, create=False)

    kwargs: dict[str, Any] = {
        **app_options,
        "client_factory": client_factory,
        "default_days": default_days,
    }
    if clock is not None:
        kwargs["clock"] = clock
    pages = create_app(**kwargs)
    # Its own client: a read-only session must never be the one the pages (or the sink) use.
    reader = ReadOnlyClient(
        client_factory, max_rows=dashboard.sql_max_rows, timeout_s=dashboard.sql_timeout_s
    )

    def close_clients() -> None:
        reader.close()
        pages.state.close_clients()

    app = Starlette(
        routes=[
            Route("/api/sql", sql_endpoint(reader), methods=["POST"]),
            Mount("/", app=pages),
        ],
        middleware=[Middleware(QuietErrors), Middleware(AuthMiddleware, policy=policy)],
    )
    app.state.close_clients = close_clients
    app.state.login_required = policy.required
    return app


def local_url(host: str, port: int) -> str:
    """The URL a process on this host uses to reach a server bound to ``host:port``."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on ``host:port``; ConfigError naming the setting if taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"the dashboard cannot listen on {host}:{port} ({exc.strerror}); "
            "choose SHINRAI_DASHBOARD__PORT / __HOST (or --port / --host)"
        ) from None
    sock.set_inheritable(True)
    return sock


class _GuestServer(uvicorn.Server):
    """uvicorn without its signal handlers: the host process (worker, command) owns them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class DashboardServer:
    """``app`` served by uvicorn on ``host:port`` inside the running event loop."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        """Remember what to serve; :meth:`start` binds."""
        self.app = app
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """Where a process on this host reaches it (after :meth:`start`)."""
        return local_url(self.host, self.port)

    async def start(self) -> None:
        """Bind (ConfigError when the address is taken) and serve until :meth:`stop`."""
        sock = bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            log_config=None,
            lifespan="off",
            server_header=False,
        )
        server = _GuestServer(config)
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]), name="dashboard-server")
        while not server.started and not self._task.done():  # noqa: ASYNC110 (uvicorn: a flag)
            await asyncio.sleep(0.02)
        if self._task.done():
            self._task.result()  # raises what stopped it
        log.info("dashboard_listening", url=self.url, login=self.app.state.login_required)

    async def stop(self) -> None:
        """Stop serving and close the app's ClickHouse clients. Idempotent."""
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout=10)
            self._task = None
        if self._server is not None:
            self._server = None
            await asyncio.to_thread(self.app.state.close_clients)
