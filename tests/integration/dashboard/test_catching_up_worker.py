""" "Catching up" on the page comes from a real SLA processor reading a real backlog.

Weeks of history sit in Kafka before the processor starts (as when a stopped worker comes
back); the dashboard reads that worker's metrics registry (``dashboard.progress.from_registry``)
the way the demo wires it. While the backlog is read the page says "Catching up"; once every
record is read it no longer does.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from dashboard import create_app
from dashboard.progress import from_registry
from schemas.directory import Client, ClientDirectory
from schemas.directory_records import directory_records
from schemas.events import InteractionEvent
from shinrai.metrics import WorkerMetrics
from shinrai.settings import ClickHouseSettings, DashboardSettings
from sinks.clickhouse.client import connect
from sinks.clickhouse.sink import ClickHouseSink
from tests.builders import ALWAYS_OPEN, ONE_MINUTE, inbound_email, outbound_email
from tests.integration.streams.processor_harness import (
    CollectorFactory,
    Env,
    collector,
    now,
    processor_env,
    wait_until,
)

pytestmark = pytest.mark.integration
_ = (collector, processor_env)  # fixtures used by name

CLIENTS = tuple(f"c{i:02d}" for i in range(12))
THREADS = 300  # per client: 2 events each, ~7k records in all


def _directory() -> ClientDirectory:
    return ClientDirectory(
        clients=tuple(
            Client(
                client_id=name,
                name=name.upper(),
                domains=(f"{name}.example",),
                owner="owner@us.example",
                policy_id=ONE_MINUTE.policy_id,
                calendar_id=ALWAYS_OPEN.calendar_id,
            )
            for name in CLIENTS
        ),
        policies=(ONE_MINUTE,),
        calendars=(ALWAYS_OPEN,),
    )


def _history(days: int = 21) -> list[InteractionEvent]:
    start = now() - timedelta(days=days)
    step = timedelta(days=days) / (THREADS + 1)
    events: list[InteractionEvent] = []
    for i in range(THREADS):
        at = start + i * step
        for client in CLIENTS:
            events.append(inbound_email(client, at, thread=f"{client}-t{i}"))
            events.append(
                outbound_email(client, at + timedelta(seconds=30), thread=f"{client}-t{i}")
            )
    return events


async def test_the_page_says_catching_up_while_the_processor_reads_a_backlog(
    processor_env: Callable[[], Env], collector: CollectorFactory, chdb_dir: Path
) -> None:
    env = processor_env()
    history = _history()
    await asyncio.to_thread(
        env.produce, env.topics.directory, list(directory_records(_directory()))
    )
    await asyncio.to_thread(env.produce_bulk, env.topics.interactions, history)

    store = ClickHouseSettings(url=f"chdb://{chdb_dir}", database=f"cu_{uuid.uuid4().hex[:10]}")
    sink = ClickHouseSink(store)
    sink.setup()  # an empty, migrated database: the banner needs no rows
    sink.close()
    metrics = WorkerMetrics()
    app, stats = env.build(env.new_app_id())
    metrics.watch_processor(stats)
    dashboard = create_app(
        lambda: connect(store, create=False),
        display=DashboardSettings(time_zone="Asia/Tokyo"),
        progress=from_registry(metrics.registry),
    )
    seen: list[bool] = []
    transport = httpx.ASGITransport(app=dashboard)
    async with httpx.AsyncClient(transport=transport, base_url="http://dash") as http:

        async def banner() -> bool:
            page = await http.get("/")
            assert page.status_code == 200, page.text[:300]
            return "id='catching-up'" in page.text

        assert not await banner()  # before the processor runs, nothing is claimed
        await app.start()
        try:
            total = len(CLIENTS) + len(history)  # the directory's announcements + the history

            async def watch() -> None:
                while stats.events_in < total:
                    seen.append(await banner())
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(watch(), timeout=240)
            await wait_until(lambda: stats.partitions_catching_up == 0, within=60)
            after = await banner()
        finally:
            await app.stop()
            dashboard.state.close_clients()
    assert any(seen), f"never saw the banner in {len(seen)} page loads"
    assert not after
