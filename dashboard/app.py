"""The Starlette application: ``/`` (HTML), ``/clients/<id>`` (HTML), ``/api`` and
``/api/<query>`` (JSON), ``/healthz``.

Before the database exists (a worker still starting, migrations running) the HTML pages answer
503 "starting" and reload by themselves; a ClickHouse that cannot be reached gets a one-line
page naming the setting, never a traceback.

One ClickHouse client is opened lazily and shared; queries run in a worker thread under a lock
(a clickhouse-connect client is not safe for concurrent use, and chdb serialises anyway), so the
event loop of a host process — the embedded worker mounts this app — never blocks on a query.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from html import escape
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from dashboard import data
from dashboard.client_page import render_client, render_unknown
from dashboard.clock import TeamClock, default_zone, team_zone
from dashboard.labels import Labels, language
from dashboard.progress import ProgressSource
from dashboard.render import View, page, render_page
from schemas.directory import ClientDirectory
from shinrai.errors import ConfigError, ShinraiError, SinkError
from shinrai.settings import ClickHouseSettings, DashboardSettings
from sinks.clickhouse.queries import names, run_query

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

ClientFactory = Callable[[], "Client"]
T = TypeVar("T")
DEFAULT_DAYS = 30
MAX_DAYS = 366


def _not_there_yet(message: str) -> bool:
    """True for the errors of a database or table not created yet (the worker is starting)."""
    lowered = message.lower()
    return any(
        marker in lowered
        for marker in ("does not exist", "unknown_database", "unknown_table", "unknown table")
    )


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
    display: DashboardSettings | None = None,
    directory: ClientDirectory | None = None,
    progress: ProgressSource | None = None,
) -> Starlette:
    """The dashboard app on ``client_factory`` (else a client on ``settings`` / the defaults).

    ``clock`` gives the default "now" (tests and replays of history pass a fixed one); every
    page and API call can override it with ``?now=<ISO-8601>``, and the window with ``?days=N``.
    ``display`` (default: ``Settings().dashboard``) sets the team's time zone and language; with
    no zone set, ``directory``'s default calendar zone is used, else UTC. ``progress`` reads the
    worker's state when the app runs in the worker's process (``dashboard.progress``).
    """
    if display is None:
        from shinrai.settings import Settings

        display = Settings().dashboard
    team = TeamClock(team_zone(display.time_zone, directory))
    guessed = not display.time_zone and default_zone(directory) is None
    # Staff names for owner addresses (the directory is not in ClickHouse: known when given).
    people = {
        m.email.lower(): m.name
        for m in (directory.staff.members if directory is not None else ())
        if m.email
    }
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
        return data.Window(now=now, days=days, tz=team.zone_name)

    def view(request: Request, win: data.Window) -> View:
        owner = request.query_params.get("owner") or None
        words = Labels(language(display.language, request.headers.get("accept-language")))
        state = progress() if progress is not None else None
        live = "now" not in request.query_params
        return View(
            win,
            team,
            words,
            live=live,
            owner=owner,
            progress=state,
            people=people,
            zone_guessed=guessed,
        )

    def trouble(request: Request, exc: ShinraiError) -> Response:
        """The 'starting' page before the database exists; a one-line 503 when unreachable."""
        words = Labels(language(display.language, request.headers.get("accept-language")))
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        starting = isinstance(exc, SinkError) and _not_there_yet(text)
        win = data.Window(now=clock().astimezone(UTC), days=1, tz=team.zone_name)
        shown = View(win, team, words, live=True)
        if starting:
            body = [
                f"<h1 id='starting'>Shinrai — {words('starting')}</h1>",
                f"<p>{words('starting_text')}</p>",
            ]
        else:
            body = [
                f"<h1 id='unavailable'>Shinrai — {words('unavailable')}</h1>",
                f"<p class='meta'>{escape(text)} (setting: SHINRAI_CLICKHOUSE__URL)</p>",
            ]
        return HTMLResponse(
            page(shown, "Shinrai", body, refresh=5),
            status_code=503,
            headers={"Retry-After": "5"},
        )

    async def main_page(request: Request) -> Response:
        try:
            win = window(request)
            owner = request.query_params.get("owner") or ""
            rows = await run_in_threadpool(clients.run, lambda c: data.run_page(c, win, owner))
        except ConfigError as exc:
            return HTMLResponse(f"<h1>Bad request</h1><p>{escape(str(exc))}</p>", status_code=400)
        except ShinraiError as exc:
            return trouble(request, exc)
        return HTMLResponse(render_page(rows, view(request, win)))

    async def client_page(request: Request) -> Response:
        client_id = request.path_params["client_id"]
        try:
            win = window(request)
            rows = await run_in_threadpool(
                clients.run, lambda c: data.run_client(c, win, client_id)
            )
        except ConfigError as exc:
            return HTMLResponse(f"<h1>Bad request</h1><p>{escape(str(exc))}</p>", status_code=400)
        except ShinraiError as exc:
            return trouble(request, exc)
        shown = view(request, win)
        known = {str(r["client_id"]) for r in rows["dashboard_clients"]}
        if client_id not in known and not rows["client_timeline"]:
            return HTMLResponse(render_unknown(shown, client_id), status_code=404)
        return HTMLResponse(render_client(rows, shown, client_id))

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
        except ShinraiError as exc:
            return JSONResponse({"error": str(exc).splitlines()[0]}, status_code=503)
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
            Route("/", main_page),
            Route("/clients/{client_id}", client_page),
            Route("/api", api_index),
            Route("/api/{name}", api_query),
            Route("/healthz", health),
        ],
        lifespan=lifespan,
    )
    app.state.close_clients = clients.close
    return app
