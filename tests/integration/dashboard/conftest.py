"""The dashboard over embedded ClickHouse seeded with the demo, served on a loopback port.

chdb binds its engine to the first data directory a process opens and can switch only after
every client is closed, so this module-scoped setup closes all its clients on teardown.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import uvicorn
from starlette.applications import Starlette

from dashboard import create_app
from engine.core import Engine
from engine.replay import replay
from producers.demo import DemoData, generate_live, split_due
from schemas.facts import Fact
from shinrai.jobs.backfill import BackfillSummary, write
from shinrai.settings import ClickHouseSettings, DashboardSettings
from sinks.clickhouse.client import connect
from sinks.clickhouse.sink import ClickHouseSink

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

NOW = datetime(2026, 3, 4, 5, 30, tzinfo=UTC)  # Wednesday 14:30 JST
DAYS = 31  # the whole live demo (28 days of history before NOW)


@dataclass(frozen=True)
class Seeded:
    """The seeded database, the demo it holds, its facts, a client and the served app's URL."""

    settings: ClickHouseSettings
    demo: DemoData
    facts: list[Fact]
    client: Client
    url: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def seeded(chdb_dir: Path) -> Iterator[Seeded]:
    settings = ClickHouseSettings(url=f"chdb://{chdb_dir}", database=f"d_{uuid.uuid4().hex[:12]}")
    # The live demo as it stands at NOW: history and in-flight work, nothing scheduled later.
    demo = generate_live(NOW)
    past, _ = split_due(demo.events, NOW)
    facts = list(replay(past, Engine(), watermark_end=NOW))
    sink = ClickHouseSink(settings)
    sink.setup()
    try:
        write(past, sink, BackfillSummary(), directory=demo.directory, until=NOW)
    finally:
        sink.close()
    client = connect(settings, create=False)
    # No time zone setting: the page must take the directory's default calendar (Asia/Tokyo).
    app = create_app(
        lambda: connect(settings, create=False),
        clock=lambda: NOW,
        default_days=DAYS,
        display=DashboardSettings(),
        directory=demo.directory,
    )
    try:
        with serve(app) as url:
            yield Seeded(settings, demo, facts, client, url)
    finally:
        app.state.close_clients()
        client.close()


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port; yields its base URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the dashboard server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
