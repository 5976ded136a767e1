"""One worker process: the Faust SLA processor plus the sink runners, started and stopped as one.

``Worker(settings)`` does no I/O. ``await start()`` then:

1. creates every topic that is missing (``shinrai.topic_admin.ensure_topics``, with
   ``worker.topic_suffix`` appended to each name);
2. sets up the ClickHouse sink on the sink thread: in embedded mode (``chdb://``) it applies the
   migrations, since the engine lives in this process and nobody else can; against a server it
   only checks that none are pending (run ``shinrai db migrate`` once, not from N workers).
   ClickHouse is not needed to start: when the set-up fails (server unreachable, chdb directory
   not writable, migrations missing) the worker starts anyway and the ClickHouse runner retries
   it with backoff (``shinrai_sink_up{sink="clickhouse"}`` is 0 meanwhile), then catches up
   from its committed offsets; the processor and the alert hooks never wait for it;
3. builds the Faust app (``streams.app.build_app``) and attaches the processor
   (``streams.processor.attach_processor``), then starts it — unless ``worker.run_processor``
   is off: a sinks-only worker, so the processor and the sink runners can run as separate
   processes (each its own core; the usual shape beyond one small box);
4. starts the sink runners, each an aiokafka consumer in its own group (``<app_id>-sink-
   clickhouse``, ``<app_id>-sink-alerts``), and the ``/metrics`` server;
5. serves the dashboard and ``POST /api/sql`` when it hosts the ClickHouse sink
   (``shinrai.jobs.worker_dashboard``).

Embedded chdb allows one process per data directory, so the ClickHouse runner must live in the
worker process (one worker per chdb directory); with an https:// ClickHouse any number of workers
may run, the groups spread the partitions. ``await stop()`` stops the runners first (flush,
commit: the part that matters for at-least-once), then the Faust app (which commits its own
offsets), then closes the sink and the metrics server.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from schemas.directory import Client
from shinrai.instance_lock import InstanceLock, directory_lock
from shinrai.logging import get_logger
from shinrai.metrics import MetricsServer, WorkerMetrics
from shinrai.settings import Settings
from sinks.alerts.records import DeliveryLog, DeliveryRecord, JsonlDeadLetters, JsonlDeliveryLog
from sinks.alerts.retry import DeliveryOptions
from sinks.alerts.routing import RoutingConfig
from sinks.alerts.store import SqliteDeliveredStore
from sinks.clickhouse.client import parse_url

if TYPE_CHECKING:
    from engine.core import Engine
    from shinrai.jobs.worker_dashboard import WorkerDashboard
    from sinks.alerts.runner import AlertRunner
    from sinks.clickhouse.runner import ClickHouseRunner
    from sinks.clickhouse.sink import ClickHouseSink
    from sinks.directory_follower import DirectoryFollower
    from streams.processor import ProcessorStats, ProcessorTopics

log = get_logger("shinrai.jobs.worker")
T = TypeVar("T")


class _ForwardToClickHouse:
    """Delivery log that hands each record to the in-process ClickHouse runner."""

    def __init__(self, runner: ClickHouseRunner) -> None:
        self._runner = runner

    def record(self, record: DeliveryRecord) -> None:
        self._runner.record_delivery(record)


class Worker:
    """The processor and the sink runners of one process (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        *,
        metrics: WorkerMetrics | None = None,
        engine: Engine | None = None,
        clock: Callable[[], datetime] | None = None,
        alert_options: DeliveryOptions | None = None,
    ) -> None:
        """Remember configuration only; :meth:`start` does the I/O."""
        from shinrai.jobs.worker_dashboard import check_dashboard_settings

        # A dashboard bound off loopback without a login is refused before anything starts.
        check_dashboard_settings(settings)
        self.settings = settings
        self.metrics = metrics or WorkerMetrics()
        self._engine = engine
        self._clock = clock
        self._alert_options = alert_options
        self.app: Any = None
        self.stats: ProcessorStats | None = None
        self.sink: ClickHouseSink | None = None
        self.clickhouse_runner: ClickHouseRunner | None = None
        self.alert_runner: AlertRunner | None = None
        self.directory_follower: DirectoryFollower | None = None
        self.dashboard: WorkerDashboard | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._metrics_server: MetricsServer | None = None
        self._jsonl: list[JsonlDeliveryLog | JsonlDeadLetters] = []
        self._app_started = False
        self._locks: list[InstanceLock] = []

    # -- names ---------------------------------------------------------------------------------

    @property
    def topics(self) -> ProcessorTopics:
        """The topic names this worker uses (``worker.topic_suffix`` appended)."""
        from streams.processor import ProcessorTopics

        return ProcessorTopics.default(self.settings.worker.topic_suffix)

    def group_id(self, runner: str) -> str:
        """The consumer group of a sink runner: never the Faust app's own group."""
        return f"{self.settings.worker.app_id}-sink-{runner}"

    def group_instance_id(self, runner: str) -> str | None:
        """A sink runner's static member name (``worker.group_instance_id``), or None."""
        name = self.settings.worker.group_instance_id
        return None if not name else f"{name}-sink-{runner}"

    @property
    def data_dir(self) -> Path:
        """Where the RocksDB tables, the delivered store and the JSONL logs live."""
        return self.settings.worker.data_dir

    @property
    def metrics_port(self) -> int | None:
        """The bound /metrics port (None when metrics are off or not started)."""
        return None if self._metrics_server is None else self._metrics_server.port

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Topics, ClickHouse, the Faust app, the runners, /metrics; undone on failure.

        A failure of one of the overlapped start steps is raised as itself (the first of
        them), never as an ``ExceptionGroup``: the CLI maps a ``ShinraiError`` to one line,
        and any other error is wrapped in one naming what failed.
        """
        try:
            await self._start()
        except BaseExceptionGroup as group:
            await self.stop()
            raise _first_error(group) from group
        except BaseException:
            await self.stop()
            raise

    def instance_locks(self) -> list[InstanceLock]:
        """What this worker must hold alone: the data directory when it runs the processor
        (RocksDB tables, one process each) and an embedded ClickHouse directory when it runs the
        ClickHouse sink (chdb: one process each). A sinks-only worker beside a processor-only
        one on the same data directory shares nothing that needs a lock."""
        worker = self.settings.worker
        locks: list[InstanceLock] = []
        if worker.run_processor:
            locks.append(directory_lock(self.data_dir, "the worker data directory"))
        target = parse_url(self.settings.clickhouse.url)
        if worker.run_clickhouse_sink and target.kind == "chdb":
            locks.append(directory_lock(Path(target.path), "the embedded ClickHouse"))
        return locks

    def _take_locks(self) -> None:
        """Take :meth:`instance_locks` before touching anything; a second worker on the same
        directories refuses in one line naming the running one (pid, metrics port)."""
        for lock in self.instance_locks():
            # Appended first: stop() releases whatever was taken when a later one refuses.
            self._locks.append(lock)
            lock.acquire(command="shinrai worker", port=self.settings.worker.metrics_port)

    async def _start(self) -> None:
        from schemas.topics import ALL_TOPICS
        from shinrai.topic_admin import ensure_topics, wait_for_group_coordinator

        settings, worker = self.settings, self.settings.worker
        self._take_locks()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        created = await asyncio.to_thread(
            ensure_topics, settings.kafka, ALL_TOPICS, suffix=worker.topic_suffix
        )
        log.info("topics_ready", created=[t.name for t in created if t.created])
        # A fresh broker creates its offsets topic on the first group lookup: wait for it here,
        # not in a burst of GroupCoordinatorNotAvailable errors from every consumer.
        await asyncio.to_thread(wait_for_group_coordinator, settings.kafka, worker.app_id)

        # The ClickHouse set-up and the processor's start (state restore, Faust) are
        # independent and mostly wait: overlap them (a failure cancels the other).
        async with asyncio.TaskGroup() as starting:
            if worker.run_clickhouse_sink:
                starting.create_task(self._start_sink())
            if worker.run_processor:
                starting.create_task(self._start_processor())

        if self.clickhouse_runner is not None:
            await self.clickhouse_runner.start()
        if worker.run_alert_sink:
            await self._start_alerts()
        await self._start_directory()
        # Pages, named queries and /api/sql on this process's ClickHouse (chdb: the only one).
        from dashboard.progress import from_registry
        from shinrai.jobs.worker_dashboard import serve_dashboard

        # "Catching up" on the page comes from this worker's own consumer metrics.
        self.dashboard = await serve_dashboard(
            settings, display=settings.dashboard, progress=from_registry(self.metrics.registry)
        )
        if worker.metrics_port is not None:
            server = MetricsServer(self.metrics, worker.metrics_port)
            server.start()
            self._metrics_server = server
            log.info("metrics_listening", port=server.port)
            for lock in self._locks:
                lock.record_port(server.port, "shinrai worker")

    async def _start_processor(self) -> None:
        from streams.app import build_app
        from streams.processor import attach_processor

        settings, worker = self.settings, self.settings.worker
        self.app = build_app(
            settings,
            app_id=worker.app_id,
            store=worker.store,
            datadir=str(self.data_dir / "faust"),
            broker_session_timeout=worker.session_timeout_s,
            broker_heartbeat_interval=min(3.0, worker.session_timeout_s / 3),
            producer_linger=worker.producer_linger_s,
            producer_compression_type=worker.producer_compression,
            **(
                {"consumer_group_instance_id": worker.group_instance_id}
                if worker.group_instance_id
                else {}
            ),
        )
        kwargs: dict[str, Any] = {"engine": self._engine}
        if self._clock is not None:
            kwargs["clock"] = self._clock
        self.stats = attach_processor(self.app, settings, self.topics, **kwargs)
        self.metrics.watch_processor(self.stats)
        await self._create_internal_topics()
        await self._restore_state()
        # Marked before it returns: a start interrupted half-way (Ctrl-C, a failure beside it)
        # must still stop the services and agents it launched, or their supervisors keep
        # restarting them and the process never exits.
        self._app_started = True
        await self.app.start()
        log.info("processor_started", app_id=worker.app_id)

    async def _create_internal_topics(self) -> None:
        """Create the changelog and leader topics before the Faust consumer first reads the
        metadata (``streams.app.internal_topics``: else a table's agent can crash-loop on
        ``PartitionsMismatch``)."""
        from shinrai.topic_admin import ensure_topics
        from streams.app import internal_topics

        specs = internal_topics(self.app)
        results = await asyncio.to_thread(ensure_topics, self.settings.kafka, specs)
        log.info("internal_topics_ready", created=[t.name for t in results if t.created])

    async def _restore_state(self) -> None:
        """Bulk-load the state table's local RocksDB from its changelog before Faust starts
        (``streams.recovery.restore_changelog``); Faust then only reads what is newer."""
        from streams.processor import STATE_TABLE
        from streams.recovery import restore_changelog

        if not self.settings.worker.store.startswith("rocksdb:"):
            return
        assert self.app is not None
        table = self.app.tables[STATE_TABLE]
        result = await restore_changelog(
            self.settings.kafka,
            table.changelog_topic.get_topic_name(),
            Path(self.app.conf.tabledir),
            STATE_TABLE,
            table.partitions,
        )
        log.info(
            "state_restored",
            records=result.records,
            mb=round(result.bytes / 2**20, 1),
            partitions=result.partitions,
            seconds=round(result.seconds, 2),
        )

    async def _start_sink(self) -> None:
        from shinrai.errors import SinkError
        from sinks.clickhouse.runner import ClickHouseRunner
        from sinks.clickhouse.sink import ClickHouseSink

        ch = self.settings.clickhouse
        embedded = parse_url(ch.url).kind == "chdb"
        # One thread for every ClickHouse call: chdb blocks, and one client must not be used
        # from two threads at once.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shinrai-sink")
        sink = ClickHouseSink(ch, migrate=embedded)
        setup_error = None
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, sink.setup)
        except SinkError as exc:
            # Not fatal: the runner retries the set-up (its first log line says so); the
            # processor and the alerts do not depend on ClickHouse.
            setup_error = str(exc)
        self.sink = sink
        self.clickhouse_runner = ClickHouseRunner(
            self.settings.kafka,
            sink,
            facts_topic=self.topics.facts,
            interactions_topic=self.topics.accepted,
            group_id=self.group_id("clickhouse"),
            metrics=self.metrics,
            executor=self._executor,
            batch_rows=ch.batch_rows,
            session_timeout_s=self.settings.worker.session_timeout_s,
            setup_error=setup_error,
        )
        self.clickhouse_runner.group_instance_id = self.group_instance_id("clickhouse")

    async def _start_alerts(self) -> None:
        from sinks.alerts.runner import AlertRunner

        worker, alerts = self.settings.worker, self.settings.alerts
        if worker.alert_routing_file is not None:
            routing = RoutingConfig.load(worker.alert_routing_file)
        else:
            routing = RoutingConfig.from_settings(alerts)
        delivery_log: DeliveryLog
        if self.clickhouse_runner is not None:
            delivery_log = _ForwardToClickHouse(self.clickhouse_runner)
        else:
            jsonl = JsonlDeliveryLog(self.data_dir / "alert-deliveries.jsonl")
            self._jsonl.append(jsonl)
            delivery_log = jsonl
        dead = JsonlDeadLetters(self.data_dir / "alert-dead-letters.jsonl")
        self._jsonl.append(dead)
        runner = AlertRunner(
            self.settings.kafka,
            alerts,
            topic=self.topics.alerts,
            group_id=self.group_id("alerts"),
            routing=routing,
            delivery_log=delivery_log,
            store=SqliteDeliveredStore(self.data_dir / "delivered.sqlite"),
            metrics=self.metrics,
            dead_letters=dead,
            options=self._alert_options,
            commit_interval_s=worker.sink_commit_interval_s,
            session_timeout_s=worker.session_timeout_s,
        )
        runner.group_instance_id = self.group_instance_id("alerts")
        self.alert_runner = runner
        await runner.start()

    async def _start_directory(self) -> None:
        """Follow the directory topic into ClickHouse ``clients`` rows and the alert routes."""
        from sinks.directory_follower import DirectoryFollower

        if self.sink is None and self.alert_runner is None:
            return
        sink, alert_runner = self.sink, self.alert_runner

        async def write_client(client: Client, version: int) -> None:
            assert sink is not None
            await self.in_sink_thread(lambda: sink.upsert_clients([client], version))

        follower = DirectoryFollower(
            self.settings.kafka,
            self.topics.directory,
            write_client=write_client if sink is not None else None,
            on_directory=alert_runner.update_directory if alert_runner is not None else None,
        )
        await follower.start()
        self.directory_follower = follower

    async def stop(self) -> None:
        """Runners (flush, commit), then the Faust app, then the sink and /metrics. Idempotent.

        A step that fails (a broker gone mid-shutdown) is logged and the next steps still run:
        a Faust app left running keeps its agents' supervisors restarting them while asyncio
        waits for them to end, and the process never exits.
        """
        grace = self.settings.worker.shutdown_timeout_s
        # Each step gets the grace, all of them together twice the grace: a broker gone makes
        # every final commit wait for its timeout, one after the other.
        ends = time.monotonic() + 2 * grace

        def left() -> float:
            return max(min(grace, ends - time.monotonic()), 0.5)

        if self.dashboard is not None:
            dashboard, self.dashboard = self.dashboard, None
            await _step("dashboard", dashboard.stop(), left())
        if self.directory_follower is not None:
            follower, self.directory_follower = self.directory_follower, None
            await _step("directory_follower", follower.stop(), left())
        if self.alert_runner is not None:
            alert_runner, self.alert_runner = self.alert_runner, None
            await _step("alert_runner", alert_runner.stop(grace_s=grace / 2), left())
        if self.clickhouse_runner is not None:
            # After the alert runner: its last delivery records go out with this final flush.
            clickhouse_runner, self.clickhouse_runner = self.clickhouse_runner, None
            await _step("clickhouse_runner", clickhouse_runner.stop(), left())
        if self.app is not None and self._app_started:
            self._app_started = False
            await _step("faust_app", self.app.stop(), left())
        if self.sink is not None:
            sink, self.sink = self.sink, None
            if self._executor is not None:
                await _step(
                    "clickhouse_sink",
                    asyncio.get_running_loop().run_in_executor(self._executor, sink.close),
                )
            else:
                sink.close()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        for jsonl in self._jsonl:
            jsonl.close()
        self._jsonl.clear()
        if self._metrics_server is not None:
            self._metrics_server.stop()
            self._metrics_server = None
        for lock in reversed(self._locks):
            lock.release()
        self._locks.clear()
        log.info("worker_stopped")

    async def in_sink_thread(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the sink thread (the one thread that may use the ClickHouse client)."""
        if self._executor is None:
            raise RuntimeError("the ClickHouse sink is not running in this worker")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def failure(self) -> str | None:
        """Why the worker cannot go on (a runner's loop died, the Faust app crashed), else None."""
        for runner in (self.clickhouse_runner, self.alert_runner):
            task = runner.done if runner is not None else None
            if task is not None and task.done():
                exc = None if task.cancelled() else task.exception()
                return f"{runner.group_id} stopped: {exc!r}"  # type: ignore[union-attr]
        app = self.app
        if app is not None and self._app_started and getattr(app, "crashed", False):
            return f"Faust app crashed: {getattr(app, 'crash_reason', None)!r}"
        return None

    async def run(self, stop: asyncio.Event, *, check_every_s: float = 0.5) -> int:
        """Start, run until ``stop`` is set or a component fails, stop. 0 = asked to stop."""
        await self.start()
        code = 0
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=check_every_s)
                reason = self.failure()
                if reason is not None:
                    log.error("worker_failed", reason=reason)
                    code = 1
                    break
        finally:
            await self.stop()
        return code


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first leaf of ``group`` as one error the CLI can print in one line.

    A ``ShinraiError`` (or a cancellation, an interrupt) is returned as it is; anything else is
    wrapped in a ``ShinraiError`` naming its type and message (the traceback is logged at
    debug level).
    """
    from shinrai.errors import ShinraiError

    leaf: BaseException = group
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    if isinstance(leaf, ShinraiError | asyncio.CancelledError | KeyboardInterrupt | SystemExit):
        return leaf
    log.debug("worker_start_failed", exc_info=leaf)
    return ShinraiError(f"worker failed to start: {type(leaf).__name__}: {leaf}")


async def _step(name: str, stopping: Awaitable[Any], timeout_s: float | None = None) -> None:
    """Await one shutdown step, at most ``timeout_s``; an error, a timeout (a final commit to a
    broker that is gone) or a library's own stray cancellation is logged, not raised, so the
    steps after it still run. Our own cancellation still propagates."""
    try:
        async with asyncio.timeout(timeout_s):
            await stopping
    except TimeoutError:
        log.error("stop_step_timeout", step=name, seconds=round(timeout_s or 0, 1))
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        log.warning("stop_step_interrupted", step=name)
    except Exception as exc:
        log.error("stop_step_failed", step=name, error=str(exc)[:300])


def build_worker(settings: Settings, **kwargs: Any) -> Worker:
    """A :class:`Worker` for ``settings`` (no I/O until ``start``/``run``)."""
    return Worker(settings, **kwargs)
