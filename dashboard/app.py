"""The Starlette application: ``/`` (HTML), ``/api`` and ``/api/<query>`` (JSON), ``/healthz``.

One ClickHouse client is opened lazily and shared; queries run in a worker thread under a lock
(a clickhouse-connect client is not safe for concurrent use, and chdb serialises anyway), so the
event loop of a host process — the embedded worker mounts this app — never blocks on a query.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from dashboard import data
from dashboard.render import render_page
from shinrai.errors import ConfigError, ShinraiError
from shinrai.settings import ClickHouseSettings
from sinks.clickhouse.queries import names, run_query

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

ClientFactory = Callable[[], "Client"]
T = TypeVar("T")
DEFAULT_DAYS = 30
MAX_DAYS = 366


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _json_default(value: object) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class _Clients:
    """One lazily opened client, used by one query at a time, reopened after a failure."""

    def __init__(self, factory: ClientFactory) -> None:
        self._factory = factory
        self._client: Client | None = None
        self._lock = threading.Lock()

    def run(self, fn: Callable[[Client], T]) -> T:
        with self._lock:
            if self._client is None:
                self._client = self._factory()
            try:
                return fn(self._client)
            except ShinraiError:
                raise
            except Exception:
                self._close()
                raise

    def _close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def close(self) -> None:
        with self._lock:
            self._close()


def create_app(
    client_factory: ClientFactory | None = None,
    *,
    settings: ClickHouseSettings | None = None,
    clock: Callable[[], datetime] = _utcnow,
    default_days: int = DEFAULT_DAYS,
) -> Starlette:
    """The dashboard app on ``client_factory`` (else a client on ``settings`` / the defaults).

    ``clock`` gives the default "now" (tests and replays of history pass a fixed one); every
    page and API call can override it with ``?now=<ISO-8601>``, and the window with ``?days=N``.
    """
    if client_factory is None:
        from shinrai.settings import Settings
        from sinks.clickhouse.client import connect

        target = settings or Settings().clickhouse

        def client_factory() -> Client:
            return connect(target, create=False)

    clients = _Clients(client_factory)

    def window(request: Request) -> data.Window:
        raw_now = request.query_params.get("now")
        raw_days = request.query_params.get("days")
        try:
            now = data.instant(raw_now) if raw_now else clock().astimezone(UTC)
            days = int(raw_days) if raw_days else default_days
        except ValueError as exc:
            raise ConfigError(f"bad now/days: {exc}") from exc
        if not 1 <= days <= MAX_DAYS:
            raise ConfigError(f"days must be between 1 and {MAX_DAYS}")
        return data.Window(now=now, days=days)

    async def page(request: Request) -> Response:
        try:
            win = window(request)
            rows = await run_in_threadpool(clients.run, lambda c: data.run_page(c, win))
        except ConfigError as exc:
            return HTMLResponse(f"<h1>Bad request</h1><p>{exc}</p>", status_code=400)
        live = "now" not in request.query_params
        return HTMLResponse(render_page(rows, win, live=live))

    async def api_index(request: Request) -> Response:
        listing = {name: data.param_types(name) for name in names()}
        return JSONResponse({"queries": listing})

    async def api_query(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in names():
            return JSONResponse({"error": f"unknown query {name!r}"}, status_code=404)
        try:
            win = window(request)
            # now/days set the window; "now" is also passed on when the query takes it.
            declared = data.param_types(name)
            given = {
                k: v
                for k, v in request.query_params.items()
                if k != "days" and (k != "now" or "now" in declared)
            }
            params = {**data.defaults(name, win), **data.convert(name, given)}
            rows = await run_in_threadpool(clients.run, lambda c: run_query(c, name, **params))
        except ConfigError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        body = orjson.dumps(
            {"query": name, "params": params, "rows": rows},
            default=_json_default,
            option=orjson.OPT_NON_STR_KEYS,
        )
        return Response(body, media_type="application/json")

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        clients.close()

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/api", api_index),
            Route("/api/{name}", api_query),
            Route("/healthz", health),
        ],
        lifespan=lifespan,
    )
    app.state.close_clients = clients.close
    return app
