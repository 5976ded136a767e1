"""The main job: one command from a clean clone to a live SLA dashboard (``shinrai demo``).

Starts (or reuses) the local Kafka broker, runs the worker in this process (topics, embedded
ClickHouse migrations, the Faust SLA processor, the ClickHouse and alert sink runners), publishes
the demo client directory, streams the demo event log into Kafka (history at once, then the
scheduled events at their own instants so warnings and breaches happen while you watch), and
serves the built-in dashboard. Ctrl-C (or SIGTERM, or ``--duration``) stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from shinrai.logging import get_logger
from shinrai.settings import Settings

log = get_logger("demo")


@dataclass
class DemoReport:
    """What a demo run did (printed at the end, asserted by the smoke test)."""

    url: str = ""
    history_events: int = 0
    scheduled_events: int = 0
    scheduled_sent: int = 0
    directory_records: int = 0
    started_kafka: bool = False
    facts_in_clickhouse: int = 0
    alerts_received: int = 0
    errors: list[str] = field(default_factory=list)


def _alert_receiver(
    settings: Settings, report: DemoReport, echo: Any
) -> Callable[[Any], Awaitable[Any]]:
    """A loopback alert hook that verifies the signature and prints each alert once."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    from sinks.alerts.errors import SignatureInvalid
    from sinks.alerts.signing import (
        IDEMPOTENCY_HEADER,
        SIGNATURE_HEADER,
        TIMESTAMP_HEADER,
        verify_signature,
    )

    seen: set[str] = set()
    secret = settings.alerts.signing_secret

    async def receive(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            verify_signature(
                secret,
                request.headers.get(TIMESTAMP_HEADER, ""),
                body,
                request.headers.get(SIGNATURE_HEADER, ""),
            )
        except SignatureInvalid as exc:
            return JSONResponse({"error": str(exc)}, status_code=401)
        key = request.headers.get(IDEMPOTENCY_HEADER, "")
        if key not in seen:
            seen.add(key)
            report.alerts_received += 1
            import orjson

            alert = orjson.loads(body)
            echo(f"ALERT {alert.get('level', '?'):>15}  {alert.get('summary', '')}")
        return JSONResponse({"ok": True})

    return receive


DEMO_SUFFIX = ".demo"
DEMO_APP_ID = "shinrai-demo"


def demo_settings(settings: Settings) -> Settings:
    """The demo's own namespace: topics ``*.demo``, app id, ClickHouse database and data dir.

    Every demo run starts from empty state in that namespace (see :func:`reset_demo_state`), so
    a demo never mixes with real data on the same broker or ClickHouse, and reruns do not pile up.
    """
    worker = settings.worker.model_copy(
        update={
            "topic_suffix": DEMO_SUFFIX,
            "app_id": DEMO_APP_ID,
            "data_dir": settings.worker.data_dir.parent / "demo-worker",
        }
    )
    clickhouse = settings.clickhouse.model_copy(update={"database": "shinrai_demo"})
    # The demo serves the dashboard itself (beside its alert hook), not through the worker.
    dashboard = settings.dashboard.model_copy(update={"in_worker": False})
    return settings.model_copy(
        update={"worker": worker, "clickhouse": clickhouse, "dashboard": dashboard}
    )


def reset_demo_state(settings: Settings) -> list[str]:
    """Delete the demo's topics (and the Faust app's internal topics), its data dir and database."""
    import shutil

    from kafka import KafkaAdminClient

    from shinrai.kafka_options import kafka_python_options

    shutil.rmtree(settings.worker.data_dir, ignore_errors=True)
    admin = KafkaAdminClient(**kafka_python_options(settings.kafka), client_id="shinrai-demo-reset")
    try:
        doomed = [
            name
            for name in admin.list_topics()
            if name.endswith(DEMO_SUFFIX) or name.startswith(f"{DEMO_APP_ID}-")
        ]
        if doomed:
            admin.delete_topics(doomed)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and set(doomed) & set(admin.list_topics()):
                time.sleep(0.2)
    finally:
        admin.close()
    from sinks.clickhouse.client import connect

    client = connect(settings.clickhouse, create=True)
    try:
        client.command(f"DROP DATABASE IF EXISTS {settings.clickhouse.database}")
    finally:
        client.close()
    return doomed


def _is_local(settings: Settings) -> bool:
    return settings.kafka.bootstrap == f"127.0.0.1:{settings.local_kafka.port}"


async def run_demo(
    settings: Settings,
    *,
    port: int = 8088,
    seed: int = 7,
    duration_s: float | None = None,
    stop_kafka: bool = True,
    echo: Any = print,
) -> DemoReport:
    """Run the demo until Ctrl-C/SIGTERM or ``duration_s``; return what happened."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Mount, Route

    from dashboard.progress import from_registry
    from dashboard.server import build_web_app
    from producers.demo import build_directory, generate_live, split_due
    from producers.kafka_producer import KafkaRecordProducer, send_event
    from schemas.directory_records import directory_records
    from schemas.topics import ALL_TOPICS
    from shinrai.jobs.worker import build_worker
    from shinrai.jobs.worker_dashboard import forget_endpoint, record_endpoint
    from shinrai.local_kafka import LocalKafka
    from shinrai.topic_admin import ensure_topics
    from sinks.clickhouse.client import connect

    report = DemoReport()
    if not settings.alerts.webhook_url:
        # No alert hook configured: page the demo's own loopback receiver (below), signed with a
        # per-run secret, so the whole alert path (sign, deliver, verify) runs for real.
        settings = settings.model_copy(
            update={
                "alerts": settings.alerts.model_copy(
                    update={
                        "webhook_url": f"http://127.0.0.1:{port}/demo/alert-hook",
                        "signing_secret": SecretStr(secrets.token_hex(16)),
                    }
                )
            }
        )
    broker = LocalKafka(settings.local_kafka)
    if _is_local(settings):
        report.started_kafka = not broker.status().answering
        echo(f"local kafka {broker.version}: starting at {broker.address} ...")
        status = await asyncio.to_thread(broker.start)
        echo(f"local kafka {status.version} running at {status.address} (pid {status.pid})")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    settings = demo_settings(settings)
    echo("demo: resetting the demo namespace (topics *.demo, database shinrai_demo) ...")
    await asyncio.to_thread(reset_demo_state, settings)
    worker = build_worker(settings)
    topics = worker.topics
    server: uvicorn.Server | None = None
    endpoint_dir: Path | None = None
    tasks: list[asyncio.Task[Any]] = []
    try:
        # The dashboard reads the same embedded ClickHouse as the sink (chdb: one process).
        ch = settings.clickhouse
        dashboard = build_web_app(
            ch,
            settings.dashboard,
            host="127.0.0.1",
            client_factory=lambda: connect(ch, create=False),
            display=settings.dashboard,
            # Times in the demo directory's default calendar zone (Asia/Tokyo) unless set, and
            # "catching up" from this worker's own metrics while it reads the history.
            directory=build_directory(),
            progress=from_registry(worker.metrics.registry),
        )
        app = Starlette(
            routes=[
                Route(
                    "/demo/alert-hook", _alert_receiver(settings, report, echo), methods=["POST"]
                ),
                Mount("/", app=dashboard),
            ]
        )
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
        server = uvicorn.Server(config)
        # uvicorn captures SIGINT/SIGTERM while it serves and re-raises them when it exits; when
        # it stops for any reason, the demo stops too.
        serving = asyncio.create_task(server.serve(), name="demo-dashboard")
        serving.add_done_callback(lambda _task: stop.set())
        tasks.append(serving)
        # The alert hook must listen before the first alert: the history below is processed in
        # seconds and an early refused delivery backs off beyond a short demo.
        while not server.started and not serving.done():  # noqa: ASYNC110 (uvicorn: a flag only)
            await asyncio.sleep(0.05)
        report.url = f"http://127.0.0.1:{port}/"
        # `shinrai db query` / `shinrai dashboard` beside the demo go through its endpoint.
        endpoint_dir = record_endpoint(
            settings, report.url.rstrip("/"), login=bool(dashboard.state.login_required)
        )

        now = datetime.now(UTC)
        data = generate_live(now, seed=seed)
        past, future = split_due(data.events, now)
        report.history_events, report.scheduled_events = len(past), len(future)

        def publish_history() -> int:
            ensure_topics(settings.kafka, ALL_TOPICS, suffix=settings.worker.topic_suffix)
            with KafkaRecordProducer(settings.kafka, client_id="shinrai-demo") as producer:
                records = directory_records(data.directory)
                for key, value in records:
                    producer.send(topics.directory, key=key, value=value)
                for event in past:
                    send_event(producer, topics.interactions, event)
                producer.flush()
                return len(records)

        # The history goes in before the worker starts, as the log a worker finds when it joins:
        # the processor reads it as a backlog, in event time (streams.watermark), and only then
        # follows the wall clock; the directory's policy announcements (stamped "now") come
        # after all of it.
        report.directory_records = await asyncio.to_thread(publish_history)
        echo(
            f"demo: published {report.directory_records} directory records and "
            f"{report.history_events} historic events; {report.scheduled_events} more arrive "
            "over the next minutes"
        )
        echo("worker: migrating ClickHouse, starting the SLA processor and the sinks ...")
        await worker.start()
        echo(f"dashboard: {report.url}   (Ctrl-C stops the demo)")

        async def play_scheduled() -> None:
            with KafkaRecordProducer(settings.kafka, client_id="shinrai-demo-live") as producer:
                for event in sorted(future, key=lambda e: e.occurred_at):
                    delay = (event.occurred_at - datetime.now(UTC)).total_seconds()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    await asyncio.to_thread(send_event, producer, topics.interactions, event)
                    await asyncio.to_thread(producer.flush)
                    report.scheduled_sent += 1

        tasks.append(asyncio.create_task(play_scheduled(), name="demo-scheduled"))

        async def until_done() -> None:
            if duration_s is None:
                await stop.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=duration_s)

        async def watch_failures() -> None:
            while not stop.is_set():
                reason = worker.failure()
                if reason is not None:
                    report.errors.append(reason)
                    echo(f"worker failed: {reason}")
                    stop.set()
                await asyncio.sleep(0.5)

        tasks.append(asyncio.create_task(watch_failures(), name="demo-watch"))
        await until_done()
        stop.set()
        if worker.sink is not None:
            sink = worker.sink

            def count_facts() -> int:
                rows = sink.client.query(
                    f"SELECT count() FROM {sink.database}.sla_facts"
                ).result_rows
                return int(rows[0][0])

            # The runner flushes by age (ClickHouseSettings.batch_age_s): let the last batch land.
            await asyncio.sleep(settings.clickhouse.batch_age_s * 2)
            with contextlib.suppress(Exception):
                report.facts_in_clickhouse = await worker.in_sink_thread(count_facts)
    finally:
        echo("demo: stopping ...")
        forget_endpoint(endpoint_dir)
        if server is not None:
            server.should_exit = True
        for task in tasks:
            if task.get_name() != "demo-dashboard":
                task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=10)
        await worker.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if report.started_kafka and stop_kafka:
            await asyncio.to_thread(broker.stop)
            echo(f"local kafka {broker.version} at {broker.address} stopped")
    echo(
        f"demo: {report.history_events} historic + {report.scheduled_sent}/"
        f"{report.scheduled_events} scheduled events; {report.facts_in_clickhouse} facts in "
        f"ClickHouse; {report.alerts_received} alerts received"
    )
    return report
