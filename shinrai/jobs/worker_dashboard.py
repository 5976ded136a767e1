"""The dashboard a worker serves: pages, named queries and ``POST /api/sql`` on its ClickHouse.

Only the worker that hosts the ClickHouse sink serves it (with embedded chdb that process is
the only one that can open the data directory). It listens on ``dashboard.host:port``
(default 127.0.0.1:8088) and, with chdb, records its URL in the data directory
(``shinrai.dashboard_endpoint``) so that ``shinrai dashboard`` and ``shinrai db query`` started
beside it go through it. A port already taken is a warning, not a reason to stop alerting;
a dashboard bound off loopback without credentials is a configuration error (the worker does
not start).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from shinrai.dashboard_endpoint import Endpoint, remove_endpoint, write_endpoint
from shinrai.errors import ConfigError
from shinrai.logging import get_logger
from shinrai.settings import Settings

log = get_logger("shinrai.jobs.worker_dashboard")


class WorkerDashboard:
    """A started dashboard server and the endpoint record it wrote (if any)."""

    def __init__(self, server: object, chdb_dir: Path | None) -> None:
        """Hold what :func:`serve_dashboard` started."""
        from dashboard.server import DashboardServer

        assert isinstance(server, DashboardServer)
        self.server = server
        self.chdb_dir = chdb_dir

    @property
    def url(self) -> str:
        """Where a process on this host reaches it."""
        return self.server.url

    async def stop(self) -> None:
        """Remove the endpoint record, then stop serving."""
        if self.chdb_dir is not None:
            remove_endpoint(self.chdb_dir, os.getpid())
        await self.server.stop()


def check_dashboard_settings(settings: Settings) -> None:
    """Refuse, before any I/O, a dashboard bound off loopback with no credentials."""
    from dashboard.auth import AccessPolicy

    if _serves(settings):
        AccessPolicy.for_binding(settings.dashboard, settings.dashboard.host)


def _serves(settings: Settings) -> bool:
    return settings.dashboard.in_worker and settings.worker.run_clickhouse_sink


async def serve_dashboard(settings: Settings, **app_options: Any) -> WorkerDashboard | None:
    """Start the worker's dashboard; None when off or when its port is taken (logged).

    ``app_options`` go to :func:`dashboard.app.create_app` (e.g. the worker's progress).
    """
    from dashboard.server import DashboardServer, build_web_app

    dash = settings.dashboard
    if not _serves(settings):
        return None
    app = build_web_app(settings.clickhouse, dash, host=dash.host, **app_options)
    server = DashboardServer(app, dash.host, dash.port)
    try:
        await server.start()
    except ConfigError as exc:
        log.warning("dashboard_not_served", reason=str(exc))
        return None
    chdb_dir = record_endpoint(settings, server.url, login=bool(app.state.login_required))
    return WorkerDashboard(server, chdb_dir)


def record_endpoint(settings: Settings, url: str, *, login: bool) -> Path | None:
    """With chdb, record this process's dashboard ``url`` in the data directory (its path).

    A directory that cannot be written (the sink is waiting for it, see the ClickHouse runner)
    is logged and skipped: alerting never depends on this record; ``db query`` beside the
    worker then names the process holding the directory instead of using the endpoint.
    """
    from sinks.clickhouse.client import parse_url

    target = parse_url(settings.clickhouse.url)
    if target.kind != "chdb":
        return None
    chdb_dir = Path(target.path)
    endpoint = Endpoint(
        pid=os.getpid(), url=url, database=settings.clickhouse.database, login=login
    )
    try:
        write_endpoint(chdb_dir, endpoint)
    except OSError as exc:
        log.warning("dashboard_endpoint_not_recorded", directory=str(chdb_dir), reason=str(exc))
        return None
    return chdb_dir


def forget_endpoint(chdb_dir: Path | None) -> None:
    """Remove this process's record (see :func:`record_endpoint`)."""
    if chdb_dir is not None:
        remove_endpoint(chdb_dir, os.getpid())
