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
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import SecretStr

from shinrai.errors import KafkaUnavailable, ShinraiError
from shinrai.instance_lock import InstanceLock, directory_lock, namespace_lock
from shinrai.logging import get_logger
from shinrai.settings import Settings

log = get_logger("demo")
T = TypeVar("T")


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
    from zoneinfo import ZoneInfo

    from starlette.requests import Request
    from starlette.responses import JSONResponse

    from sinks.alerts.errors import SignatureInvalid
    from sinks.alerts.payload import local_time
    from sinks.alerts.signing import (
        IDEMPOTENCY_HEADER,
        SIGNATURE_HEADER,
        TIMESTAMP_HEADER,
        verify_signature,
    )

    seen: set[str] = set()
    secret = settings.alerts.signing_secret
    # People read the alert's deadline in the team's zone (the demo's: Asia/Tokyo), named.
    zone = ZoneInfo(settings.alerts.time_zone) if settings.alerts.time_zone else None

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
            due = ""
            if alert.get("deadline"):
                deadline = datetime.fromisoformat(alert["deadline"])
                due = f"  (due {local_time(deadline, zone)})"
            echo(f"ALERT {alert.get('level', '?'):>15}  {alert.get('summary', '')}{due}")
        return JSONResponse({"ok": True})

    return receive


DEMO_SUFFIX = ".demo"
DEMO_APP_ID = "shinrai-demo"
DEMO_SESSION_TIMEOUT_S = 10.0
"""The demo's group session timeout: a killed run's consumers leave its groups within this."""
DEMO_SHUTDOWN_GRACE_S = 4.0
"""The demo worker's grace for in-flight alert deliveries and the Faust app's stop."""
SHUTDOWN_DEADLINE_S = 15.0
"""Last resort: a demo still stopping this long after Ctrl-C/SIGTERM exits at once."""


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
            "session_timeout_s": min(settings.worker.session_timeout_s, DEMO_SESSION_TIMEOUT_S),
            # Ctrl-C on a demo: in-flight deliveries get a short grace, not a production one.
            "shutdown_timeout_s": min(settings.worker.shutdown_timeout_s, DEMO_SHUTDOWN_GRACE_S),
        }
    )
    clickhouse = settings.clickhouse.model_copy(update={"database": "shinrai_demo"})
    # The demo serves the dashboard itself (beside its alert hook), not through the worker.
    dashboard = settings.dashboard.model_copy(update={"in_worker": False})
    # Alerts read in the team's zone: the setting, else the demo directory's (Asia/Tokyo).
    alerts = settings.alerts
    if not alerts.time_zone:
        from dashboard.clock import team_zone
        from producers.demo import build_directory

        zone = team_zone(settings.dashboard.time_zone, build_directory())
        alerts = alerts.model_copy(update={"time_zone": zone})
    return settings.model_copy(
        update={
            "worker": worker,
            "clickhouse": clickhouse,
            "dashboard": dashboard,
            "alerts": alerts,
        }
    )


def demo_locks(settings: Settings) -> list[InstanceLock]:
    """The locks a demo holds (``settings`` are :func:`demo_settings`): its topic namespace on
    this broker, its worker data directory and an embedded ClickHouse directory."""
    from sinks.clickhouse.client import parse_url

    locks = [
        namespace_lock(settings.kafka.bootstrap, settings.worker.topic_suffix),
        directory_lock(settings.worker.data_dir, "the worker data directory"),
    ]
    target = parse_url(settings.clickhouse.url)
    if target.kind == "chdb":
        locks.append(directory_lock(Path(target.path), "the embedded ClickHouse"))
    return locks


def take_locks(locks: list[InstanceLock], *, command: str, port: int | None) -> None:
    """Take every lock or none: the first one held elsewhere raises ``InstanceLocked``."""
    taken: list[InstanceLock] = []
    try:
        for lock in locks:
            taken.append(lock.acquire(command=command, port=port))
    except BaseException:
        for lock in reversed(taken):
            lock.release()
        raise


def _retrying(call: Callable[[], T], timeout_s: float) -> T:
    """``call()``, retried while Kafka answers with a retriable error (a broker that just
    started is still loading its group coordinator: ``CoordinatorLoadInProgress``)."""
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return call()
        except KafkaError as exc:
            if not getattr(exc, "retriable", False) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _live_members(admin: Any, groups: list[str], timeout_s: float) -> dict[str, int]:
    """Members per consumer group, of the groups that have any."""
    described = _retrying(lambda: admin.describe_groups(groups), timeout_s)
    return {
        group: len(info.get("members") or [])
        for group, info in described.items()
        if info.get("members")
    }


def reset_demo_state(settings: Settings, *, echo: Any = print) -> list[str]:
    """Delete the demo's consumer groups, topics (and the Faust app's internal topics), its data
    dir and database. The caller holds the demo's locks (:func:`demo_locks`).

    Topics are deleted only once no consumer of the demo's groups is left: a run killed without
    leaving its groups (kill -9, a crash) keeps members until the session timeout, and deleting
    and re-creating topics under a live member is what froze warm restarts (the member's
    generation, assignment and offsets described topics that no longer existed). Their
    committed offsets go with the groups, so nothing from an earlier run is read as a position.
    """
    import shutil

    from kafka import KafkaAdminClient
    from kafka.errors import GroupIdNotFoundError, KafkaError

    from shinrai.kafka_options import kafka_python_options

    shutil.rmtree(settings.worker.data_dir, ignore_errors=True)  # its lock file lies beside it
    admin = KafkaAdminClient(**kafka_python_options(settings.kafka), client_id="shinrai-demo-reset")
    try:
        groups = sorted(
            {
                str(g.get("group_id"))
                for g in _retrying(admin.list_groups, settings.kafka.request_timeout_s)
                if str(g.get("group_id", "")).startswith(DEMO_APP_ID)
            }
        )
        if groups:
            patience = settings.worker.session_timeout_s + 15
            deadline = time.monotonic() + patience
            live = _live_members(admin, groups, settings.kafka.request_timeout_s)
            if live:
                echo(
                    f"demo: waiting up to {patience:.0f} s for the consumers of a stopped run to "
                    f"leave {', '.join(sorted(live))} ..."
                )
            while live and time.monotonic() < deadline:
                time.sleep(0.5)
                live = _live_members(admin, groups, settings.kafka.request_timeout_s)
            if live:
                raise ShinraiError(
                    f"the demo's consumer groups still have live members ({live}) on "
                    f"{settings.kafka.bootstrap}: is a demo running on another machine?"
                )
            with contextlib.suppress(GroupIdNotFoundError):
                try:
                    admin.delete_groups(groups)
                except KafkaError as exc:  # a group that emptied and vanished meanwhile
                    log.warning("demo_group_delete_failed", error=str(exc))
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
    except KafkaError as exc:
        raise KafkaUnavailable(
            f"resetting the demo namespace on {settings.kafka.bootstrap} failed: {exc}"
        ) from exc
    finally:
        admin.close()
    from sinks.clickhouse.client import connect

    client = connect(settings.clickhouse, create=True)
    try:
        client.command(f"DROP DATABASE IF EXISTS {settings.clickhouse.database}")
    finally:
        client.close()
    return doomed


def facts_written(metrics: Any) -> int:
    """SLA facts this run's ClickHouse runner wrote (the demo database is new every run)."""
    total = 0.0
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "shinrai_sink_rows_written_total" and "fact" in sample.labels.get(
                "table", ""
            ):
                total += sample.value
    return int(total)


def _is_local(settings: Settings) -> bool:
    return settings.kafka.bootstrap == f"127.0.0.1:{settings.local_kafka.port}"


async def _in_daemon_thread(fn: Callable[[], T]) -> T:
    """Run blocking client code (kafka-python, the broker manager) in a daemon thread.

    ``asyncio.to_thread`` threads are joined when the interpreter exits: one blocked on a broker
    that went away kept a stopped demo alive (an orphaned ``--duration 40`` run outlived its
    duration and SIGTERM by hours). A daemon thread never holds the exit; the awaiting task can
    still be cancelled.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not future.done():
            outcome()

    def run() -> None:
        try:
            result = fn()
        except BaseException as exc:  # handed to the awaiting task
            error = exc
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
                loop.call_soon_threadsafe(settle, lambda: future.set_exception(error))
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, lambda: future.set_result(result))

    threading.Thread(
        target=run, name=f"demo-{getattr(fn, '__name__', 'call')}", daemon=True
    ).start()
    return await future


class _Stopper:
    """Ctrl-C and SIGTERM: the first stops the demo (cancelling whatever it is starting), a
    second one exits at once; a stop that takes longer than ``deadline_s`` exits too."""

    def __init__(self, echo: Any, deadline_s: float, on_hard_exit: Callable[[], None]) -> None:
        self.event = asyncio.Event()
        self.signals = 0
        self.starting: asyncio.Task[Any] | None = None
        self._echo = echo
        self._deadline_s = deadline_s
        self._on_hard_exit = on_hard_exit
        self._watchdog: threading.Timer | None = None
        self.exit_status: int | None = None  # set once the demo has stopped and reported

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.on_signal, sig)

    def uninstall(self, loop: asyncio.AbstractEventLoop) -> None:
        """Give the signals back (a Ctrl-C now interrupts at once). The deadline stays armed
        until the process exits: a Faust app that did not stop in its grace (a broker gone)
        leaves agents whose supervisors restart them while asyncio waits for them to end."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)

    def on_signal(self, signum: int) -> None:
        self.signals += 1
        if self.signals > 1:
            self._hard_exit(f"second {signal.Signals(signum).name}: exiting now")
        self._echo(f"demo: {signal.Signals(signum).name} received, stopping ...")
        self.request()

    def request(self) -> None:
        """Stop: set the event, cancel a start in progress, arm the last-resort deadline."""
        self.event.set()
        if self.starting is not None and not self.starting.done():
            self.starting.cancel()
        if self._watchdog is None:
            self._watchdog = threading.Timer(
                self._deadline_s,
                self._hard_exit,
                (f"still stopping after {self._deadline_s:.0f} s: exiting now",),
            )
            self._watchdog.daemon = True
            self._watchdog.start()

    def exit_now(self, why: str) -> None:
        """Exit the process at once (the demo's status once it has reported, else 130)."""
        self._hard_exit(why)

    def _hard_exit(self, why: str) -> None:
        self._echo(f"demo: {why}")
        with contextlib.suppress(Exception):
            self._on_hard_exit()
        sys.stderr.flush()
        os._exit(130 if self.exit_status is None else self.exit_status)


async def run_demo(
    settings: Settings,
    *,
    port: int = 8088,
    seed: int = 7,
    duration_s: float | None = None,
    stop_kafka: bool = True,
    echo: Any = print,
    shutdown_deadline_s: float = SHUTDOWN_DEADLINE_S,
) -> DemoReport:
    """Run the demo until Ctrl-C/SIGTERM or ``duration_s``; return what happened.

    Before it touches anything (broker, topics, database) it takes the demo's locks
    (:func:`demo_locks`): a second demo refuses in one line naming the running one.
    """
    locks = demo_locks(demo_settings(settings))
    take_locks(locks, command="shinrai demo", port=port)
    try:
        return await _run_demo(
            settings,
            port=port,
            seed=seed,
            duration_s=duration_s,
            stop_kafka=stop_kafka,
            echo=echo,
            shutdown_deadline_s=shutdown_deadline_s,
        )
    finally:
        for lock in reversed(locks):
            lock.release()


async def _run_demo(
    settings: Settings,
    *,
    port: int,
    seed: int,
    duration_s: float | None,
    stop_kafka: bool,
    echo: Any,
    shutdown_deadline_s: float,
) -> DemoReport:
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

    def stop_broker_now() -> None:
        if report.started_kafka and stop_kafka:
            broker.stop(timeout_s=5)

    loop = asyncio.get_running_loop()
    stopper = _Stopper(echo, shutdown_deadline_s, stop_broker_now)
    stop = stopper.event
    stopper.install(loop)
    settings = demo_settings(settings)
    worker = build_worker(settings)
    topics = worker.topics
    server: uvicorn.Server | None = None
    endpoint_dir: Path | None = None
    tasks: list[asyncio.Task[Any]] = []

    async def starting(step: Awaitable[T]) -> T:
        """Await one start-up step; Ctrl-C cancels it (and stops the demo)."""
        task = asyncio.ensure_future(step)
        stopper.starting = task
        try:
            return await task
        finally:
            stopper.starting = None

    try:
        if _is_local(settings):
            report.started_kafka = not broker.status().answering
            echo(f"local kafka {broker.version}: starting at {broker.address} ...")
            status = await starting(_in_daemon_thread(broker.start))
            echo(f"local kafka {status.version} running at {status.address} (pid {status.pid})")

        echo("demo: resetting the demo namespace (topics *.demo, database shinrai_demo) ...")
        await starting(_in_daemon_thread(lambda: reset_demo_state(settings, echo=echo)))
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
        serving.add_done_callback(lambda _task: stopper.request())
        tasks.append(serving)
        # The alert hook must listen before the first alert: the history below is processed in
        # seconds and an early refused delivery backs off beyond a short demo.
        while not server.started and not serving.done():  # noqa: ASYNC110 (uvicorn: a flag only)
            await asyncio.sleep(0.05)
        # uvicorn installed its own handlers while it started: ours stay in charge.
        stopper.install(loop)
        if stop.is_set():
            raise asyncio.CancelledError
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
                step = max(1, len(past) // 4)
                # The history in batch records per partition, as `shinrai produce` sends a file.
                writer = producer.event_writer(topics.interactions)
                for sent, event in enumerate(past, 1):
                    writer.write(event)
                    if sent % step == 0 and sent < len(past):
                        writer.flush()
                        producer.flush()
                        echo(f"demo: history published {sent}/{len(past)}")
                writer.flush()
                producer.flush()
                return len(records)

        # The history goes in before the worker starts, as the log a worker finds when it joins:
        # the processor reads it as a backlog, in event time (streams.watermark), and only then
        # follows the wall clock; the directory's policy announcements (stamped "now") come
        # after all of it.
        report.directory_records = await starting(_in_daemon_thread(publish_history))
        echo(
            f"demo: history published {len(past)}/{len(past)} events and "
            f"{report.directory_records} directory records; {report.scheduled_events} more "
            "events arrive over the next minutes"
        )
        echo("worker: migrating ClickHouse, starting the SLA processor and the sinks ...")
        worker_began = time.monotonic()
        await starting(worker.start())
        echo(f"dashboard: {report.url}   (Ctrl-C stops the demo)")

        async def play_scheduled() -> None:
            with KafkaRecordProducer(settings.kafka, client_id="shinrai-demo-live") as producer:
                for event in sorted(future, key=lambda e: e.occurred_at):
                    delay = (event.occurred_at - datetime.now(UTC)).total_seconds()
                    if delay > 0:
                        await asyncio.sleep(delay)

                    def send_one(event: Any = event) -> None:
                        send_event(producer, topics.interactions, event)
                        producer.flush()

                    await _in_daemon_thread(send_one)
                    report.scheduled_sent += 1

        tasks.append(asyncio.create_task(play_scheduled(), name="demo-scheduled"))

        async def show_progress() -> None:
            """Print the processor's progress through the history, then that it caught up."""
            stats, total = worker.stats, len(past)
            if stats is None:
                return
            shown = -1
            while not stop.is_set():
                # events_in also counts the directory's policy announcements read back.
                done = min(max(stats.events_in - stats.policy_changes_out, 0), total)
                if done >= total and stats.partitions_catching_up == 0:
                    echo(
                        f"worker: caught up: {total}/{total} historic events processed in "
                        f"{time.monotonic() - worker_began:.1f} s since the worker started; now "
                        "following the clock"
                    )
                    return
                if done != shown:
                    echo(f"worker: processing history {done}/{total}")
                    shown = done
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=2)

        tasks.append(asyncio.create_task(show_progress(), name="demo-progress"))

        async def watch_failures() -> None:
            while not stop.is_set():
                reason = worker.failure()
                if reason is not None:
                    report.errors.append(reason)
                    echo(f"worker failed: {reason}")
                    stopper.request()
                await asyncio.sleep(0.5)

        tasks.append(asyncio.create_task(watch_failures(), name="demo-watch"))
        if duration_s is None:
            await stop.wait()
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=duration_s)
        stopper.request()
    except asyncio.CancelledError:
        if not stop.is_set():
            raise  # cancelled from outside, not by our own Ctrl-C handling
    finally:
        stopper.request()  # from here on, the last-resort deadline runs
        echo("demo: stopping ...")
        forget_endpoint(endpoint_dir)
        for task in tasks:
            if task.get_name() != "demo-dashboard":
                task.cancel()
        # The loopback alert hook stays up while the worker stops: deliveries in flight land.
        await worker.stop()  # the ClickHouse runner's last flush included
        report.facts_in_clickhouse = facts_written(worker.metrics)
        if server is not None:
            server.should_exit = True
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=5)
        stopper.uninstall(loop)
        if report.started_kafka and stop_kafka:
            await _in_daemon_thread(broker.stop)
            echo(f"local kafka {broker.version} at {broker.address} stopped")
    echo(
        f"demo: {report.history_events} historic + {report.scheduled_sent}/"
        f"{report.scheduled_events} scheduled events; {report.facts_in_clickhouse} facts in "
        f"ClickHouse; {report.alerts_received} alerts received"
    )
    stopper.exit_status = 1 if report.errors else 0
    if not await _leftovers_end(timeout_s=3.0):
        # A Faust app that did not stop in its grace (the broker is gone) leaves agents whose
        # supervisors restart them as fast as asyncio cancels them: exiting is all that is left.
        stopper.exit_now("background tasks did not end after the stop: exiting now")
    return report


async def _leftovers_end(timeout_s: float) -> bool:
    """Cancel every other task of the loop; whether they all ended within ``timeout_s``."""
    current = asyncio.current_task()
    others = [task for task in asyncio.all_tasks() if task is not current]
    for task in others:
        task.cancel()
    if not others:
        return True
    _done, pending = await asyncio.wait(others, timeout=timeout_s)
    return not pending
