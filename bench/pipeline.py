"""The pipeline end to end: one Worker, from produced events to facts in ClickHouse and alerts.

Run: ``.venv/bin/python -m bench.pipeline [--quick] [--events N] [--batch-records N]`` (or
through ``bench.run``).

The worker runs as a child process (``python -m bench.pipeline worker SPEC.json``: one
``shinrai.jobs.worker.Worker`` with private topics via ``worker.topic_suffix``, its own RocksDB
directory and its own chdb data directory, the alert hook runner off) and prints its counters,
CPU seconds, run-queue wait and RSS as one JSON line every 50 ms. For the latency phases a second
child runs the alert hook runner alone (``shinrai worker --no-processor --no-clickhouse-sink``),
started at the alerts topic's end (the backlog's thousands of alerts are not delivered), posting
to a webhook receiver in the driver on 127.0.0.1. This process (the driver) produces, watches the
alerts topic, the webhook deliveries and the ClickHouse runner's committed offsets, and never
imports chdb.

1. **Sustained throughput**: N canonical events (``bench.kafka_limits.canonical_events``,
   stamped in the recent past, in order per client) are produced *before* the worker starts, so
   the worker meets a backlog and runs flat out. The rate is N / (time the ClickHouse runner
   has committed every fact and interaction - time the processor read its first event): a
   committed offset means the rows were flushed to ClickHouse first (at-least-once order).
2. **Event → alert latency** at ~70% of that rate: the same ordinary event mix as (1), stamped
   as it is sent, at 70% of the sustained rate, with one probe after every ``PROBE_EVERY``
   events: an inbound email stamped five minutes ago for a client with a 24x7 calendar and a
   one-minute calendar-time policy, so it opens an obligation that is already breached;
   latency = arrival of the probe's breach alert on the alerts topic (consumer in this
   process) - the moment this process handed the probe to its producer (aiokafka, linger 0).
   (Until 2026-11-26 21:00 the latency phase sent only probes, each ~5x heavier than the
   ordinary mix, so "70%" overloaded the worker and measured a queue.)
   Also event → webhook delivered (the same probes' breach POSTs arriving at the receiver), the
   ticks sent per event, and the worker's CPU and run-queue wait share over the phase (how much
   of a queue is the machine's load rather than our work).
3. **Breach delay**: emails whose one-minute deadline falls 5-7 s ahead, no further events;
   delay = arrival of the breach alert on the alerts topic - the deadline, and arrival of its
   webhook POST at the receiver - the deadline (what a customer sees). The live engine holds
   timers ``allowed_lateness_s`` (0.5 s) behind the wall clock and the worker's timer runs
   every ``tick_interval_s`` (0.2 s), the production defaults kept here.

``--batch-records N``: the backlog of (1) is produced as batch records (``schemas.batches``: up
to N events of one partition per record, produced to that partition) instead of one record per
event; only (1) is measured then ("end to end from batch records"): the later phases send single
records paced on the single-record rate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from pydantic import SecretStr

from schemas.base import encode
from schemas.events import InteractionEvent
from shinrai.kafka_options import aiokafka_options
from shinrai.settings import (
    AlertSettings,
    ClickHouseSettings,
    KafkaSettings,
    Settings,
    WorkerSettings,
)
from tests.builders import inbound_email, policy_event

# -- the worker child ------------------------------------------------------------------------------


@dataclass
class WorkerSpec:
    """What the worker child needs to build its Settings (JSON between the processes)."""

    bootstrap: str
    suffix: str
    app_id: str
    data_dir: str
    chdb_dir: str
    database: str = "bench"
    partitions: int = 6
    role: str = "all"  # "all", or "processor" / "sinks" for the split layout
    webhook_url: str | None = None  # where the "alerts" role delivers

    def settings(self) -> Settings:
        """One worker's Settings: private topics, own state and chdb directories; the alert
        runner only in the "alerts" role (to ``webhook_url``)."""
        return Settings(
            kafka=KafkaSettings(bootstrap=self.bootstrap, topic_partitions=self.partitions),
            clickhouse=ClickHouseSettings(url=f"chdb://{self.chdb_dir}", database=self.database),
            alerts=AlertSettings(
                webhook_url=self.webhook_url, signing_secret=SecretStr("bench-webhook")
            ),
            worker=WorkerSettings(
                app_id=self.app_id,
                data_dir=Path(self.data_dir),
                topic_suffix=self.suffix,
                metrics_port=None,
                run_alert_sink=self.role == "alerts" and self.webhook_url is not None,
                run_processor=self.role in ("all", "processor"),
                run_clickhouse_sink=self.role in ("all", "sinks"),
                session_timeout_s=10,
            ),
        )


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS and VmHWM of a process in KiB (``/proc/<pid>/status``)."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                out[name] = int(value.split()[0])
    return out


def runqueue_wait_s() -> float:
    """Seconds this process's main thread (the event loop) has waited runnable for a CPU
    (``/proc/self/schedstat``; 0 where not available): CPU starvation, not our work."""
    try:
        return int(Path("/proc/self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def broker_cpu_s() -> float | None:
    """CPU seconds (user + system) of the local broker (``shinrai kafka start``), if it runs here."""
    from shinrai.local_kafka import LocalKafka

    pid = LocalKafka(Settings().local_kafka).status().pid
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _child(spec: WorkerSpec) -> None:
    from shinrai.jobs.worker import build_worker
    from shinrai.logging import configure

    configure("WARNING")
    worker = build_worker(spec.settings())
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    def line(**extra: Any) -> None:
        st = worker.stats
        mem = proc_status()
        record = {
            "t": time.time(),
            "cpu": time.process_time(),
            "runq_wait": runqueue_wait_s(),
            "rss_kb": mem.get("VmRSS", 0),
            "hwm_kb": mem.get("VmHWM", 0),
            "started": worker.directory_follower is not None,  # set last by Worker.start
            **(
                {}
                if st is None
                else {
                    "events_in": st.events_in,
                    "batches_in": st.batches_in,
                    "facts_out": st.facts_out,
                    "alerts_out": st.alerts_out,
                    "ticks_sent": st.ticks_sent,
                    "index_rebuilds": st.index_rebuilds,
                    "open": st.open_obligations,
                }
            ),
            **extra,
        }
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()

    async def monitor() -> None:
        while True:
            line()
            await asyncio.sleep(0.05)

    line(phase="starting")
    task = asyncio.create_task(monitor())
    code = await worker.run(stop)
    task.cancel()
    line(phase="stopped", code=code)


class WorkerProcess:
    """A worker child and the history of its status lines."""

    def __init__(self, spec: WorkerSpec, log_path: Path) -> None:
        self.spec = spec
        self.log_path = log_path
        self.history: list[dict[str, Any]] = []
        self.pid = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Spawn the child (it starts the Worker at once)."""
        spec_path = self.log_path.with_suffix(".spec.json")
        spec_path.write_text(json.dumps(asdict(self.spec)))
        log = self.log_path.open("ab")
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.pipeline", "worker", str(spec_path),
            stdout=asyncio.subprocess.PIPE, stderr=log,
            limit=1 << 20,
        )  # fmt: skip
        log.close()
        self.pid = self._proc.pid
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        async for raw in self._proc.stdout:
            with contextlib.suppress(ValueError):
                self.history.append(json.loads(raw))

    @property
    def last(self) -> dict[str, Any]:
        """The latest status line (empty before the first)."""
        return self.history[-1] if self.history else {}

    async def first(
        self, predicate: Callable[[dict[str, Any]], bool], within: float, what: str
    ) -> dict[str, Any]:
        """The first status line (old or new) that satisfies ``predicate``."""
        deadline = time.monotonic() + within
        checked = 0
        while True:
            for status in self.history[checked:]:
                if predicate(status):
                    return status
            checked = len(self.history)
            if self._proc is not None and self._proc.returncode is not None:
                raise RuntimeError(f"worker exited ({self._proc.returncode}); see {self.log_path}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{within:g} s waiting for {what}; last: {self.last}")
            await asyncio.sleep(0.05)

    async def stop(self, grace_s: float = 60.0) -> None:
        """SIGTERM, wait (then SIGKILL)."""
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), grace_s)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)
        self._proc = None


# -- driver helpers --------------------------------------------------------------------------------


def new_spec(kafka: KafkaSettings, root: Path, name: str) -> WorkerSpec:
    """A spec with a random topic suffix and app id, directories under ``root``."""
    tag = uuid.uuid4().hex[:8]
    return WorkerSpec(
        bootstrap=kafka.bootstrap,
        suffix=f"-bench-{name}-{tag}",
        app_id=f"bench-{name}-{tag}",
        data_dir=str(root / "worker"),
        chdb_dir=str(root / "chdb"),
    )


async def skip_to_end(kafka: KafkaSettings, group: str, topic: str, partitions: int) -> None:
    """Commit the log end of every partition of ``topic`` for ``group`` (it starts there)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.structs import OffsetAndMetadata

    consumer = AIOKafkaConsumer(**aiokafka_options(kafka), group_id=group,
                                enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.commit({tp: OffsetAndMetadata(end, "") for tp, end in ends.items()})
    finally:
        await consumer.stop()


def create_topics(spec: WorkerSpec) -> None:
    """Every topic of ``schemas.topics`` with the spec's suffix."""
    from schemas.topics import ALL_TOPICS
    from shinrai.topic_admin import ensure_topics

    ensure_topics(spec.settings().kafka, ALL_TOPICS, suffix=spec.suffix)


def delete_topics(spec: WorkerSpec) -> None:
    """Best effort: the spec's topics and the Faust app's changelog topics."""
    from bench.kafka_limits import delete_topics as delete

    kafka = spec.settings().kafka
    delete(kafka, spec.suffix)
    delete(kafka, spec.app_id)


def bench_inbound_email(client: str, at: datetime, thread: str) -> InteractionEvent:
    """An inbound email that opens an obligation in ``thread``: a stable id per (client,
    thread) and source ``bench``."""
    return inbound_email(client, at, thread, event_id=f"in-{client}-{thread}", source="bench")


async def produce_all(kafka: KafkaSettings, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    """Produce every record (aiokafka, acks=all, lz4) and wait for every acknowledgement."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        **aiokafka_options(kafka), acks="all", enable_idempotence=True,
        linger_ms=20, max_batch_size=256 * 1024, compression_type="lz4",
    )  # fmt: skip
    await producer.start()
    try:
        futures = [await producer.send(topic, key=k, value=v) for k, v in records]
        await producer.flush()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def as_batch_records(
    records: list[tuple[bytes, bytes]], partitions: int, size: int
) -> list[tuple[int, bytes, bytes]]:
    """``(partition, key, value)`` of batch records holding ``records`` (in their order per
    partition, up to ``size`` events each, on the partition the default partitioner gives each
    event's key), as a batch writer produces them (``schemas.batches``)."""
    from schemas.batches import EVENT_BATCH, join, partition_for

    per_partition: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
    for key, value in records:
        per_partition[partition_for(key, partitions)].append((key, value))
    out: list[tuple[int, bytes, bytes]] = []
    for partition, rows in sorted(per_partition.items()):
        for n in range(0, len(rows), size):
            group = rows[n : n + size]
            out.append((partition, group[0][0], join(EVENT_BATCH, [v for _, v in group])))
    return out


async def produce_to_partitions(
    kafka: KafkaSettings, topic: str, records: list[tuple[int, bytes, bytes]]
) -> None:
    """Produce each ``(partition, key, value)`` to its partition, as ``produce_all`` does."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        **aiokafka_options(kafka), acks="all", enable_idempotence=True,
        linger_ms=20, max_batch_size=1024 * 1024, compression_type="lz4",
    )  # fmt: skip
    await producer.start()
    try:
        futures = [await producer.send(topic, key=k, value=v, partition=p) for p, k, v in records]
        await producer.flush()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def sink_caught_up(
    kafka: KafkaSettings, group: str, topics: list[str], partitions: int
) -> bool:
    """True when ``group`` has committed the log end of every partition of ``topics``."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**aiokafka_options(kafka))
    consumer = AIOKafkaConsumer(**aiokafka_options(kafka), group_id=None)
    await admin.start()
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
        committed = await admin.list_consumer_group_offsets(group)
        return all(
            (committed.get(tp).offset if committed.get(tp) else 0) >= end
            for tp, end in ends.items()
        )
    finally:
        await consumer.stop()
        await admin.close()


@dataclass
class AlertWatch:
    """Reads the alerts topic from its current end; keeps (arrival wall time, alert JSON)."""

    kafka: KafkaSettings
    topic: str
    partitions: int
    seen: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _consumer: Any = None

    async def start(self) -> None:
        """Assign every partition, seek to the end, read in a task."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(
            **aiokafka_options(self.kafka), group_id=None,
            enable_auto_commit=False, fetch_max_wait_ms=5,
        )  # fmt: skip
        await consumer.start()
        consumer.assign([TopicPartition(self.topic, p) for p in range(self.partitions)])
        await consumer.seek_to_end()
        self._consumer = consumer
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=100)
            now = time.time()
            for records in batch.values():
                for record in records:
                    self.seen.append((now, orjson.loads(record.value)))

    def breaches(self) -> list[tuple[float, dict[str, Any]]]:
        """Breach alerts seen so far."""
        return [(t, a) for t, a in self.seen if a.get("level") == "breach"]

    async def stop(self) -> None:
        """Stop reading."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()


@dataclass
class HookReceiver:
    """A webhook endpoint on 127.0.0.1 (HTTP/1.1, one request per connection, always 200, as
    tests/integration/alerts' receiver): keeps (arrival wall time, payload JSON) of every
    delivery the worker's alert runner makes."""

    seen: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """Where the alert runner posts."""
        return f"http://127.0.0.1:{self.port}/bench/alert-hook"

    async def start(self) -> None:
        """Listen on an ephemeral port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.decode("latin-1").split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length)
            self.seen.append((time.time(), orjson.loads(body)))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass  # the client gave up; not a delivery
        finally:
            writer.close()

    def breaches(self) -> list[tuple[float, dict[str, Any]]]:
        """Breach deliveries so far."""
        return [(t, a) for t, a in self.seen if a.get("level") == "breach"]

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()


async def wait_for(predicate: Callable[[], bool], within: float, what: str) -> None:
    """Poll ``predicate`` every 20 ms."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{within:g} s waiting for {what}")
        await asyncio.sleep(0.02)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100)."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


# -- the measurement -------------------------------------------------------------------------------


PROBE_EVERY = 10  # one latency probe per this many events of the ordinary mix


async def _paced_mix(
    kafka: KafkaSettings, topic: str, clients: list[str], rate: float, seconds: float
) -> dict[str, deque[float]]:
    """The ordinary event mix at ``rate``/s for ``seconds``, with latency probes among it.

    The mix is ``bench.kafka_limits.canonical_events`` for fresh clients, each stamped with the
    instant it is sent. After every ``PROBE_EVERY`` events one probe follows: an inbound email
    stamped five minutes ago for a one-minute-policy client, so its breach alert is due at once.
    Returns the send wall times of the probes per client.
    """
    from aiokafka import AIOKafkaProducer

    from bench.kafka_limits import canonical_events

    total = max(PROBE_EVERY, int(rate * seconds))
    started_at = datetime.now(UTC)
    mix = canonical_events(total, clients=max(10, total // 24), prefix="mix",
                           start=started_at, step_ms=1000 / rate)  # fmt: skip
    producer = AIOKafkaProducer(**aiokafka_options(kafka), acks="all",
                                enable_idempotence=True, linger_ms=0)  # fmt: skip
    await producer.start()
    sent_at: dict[str, deque[float]] = defaultdict(deque)
    try:
        started = time.monotonic()
        sent = probes = 0
        while sent < total:
            due = min(total, int((time.monotonic() - started) * rate) + 1)
            while sent < due:
                event = mix[sent]
                await producer.send(
                    topic, key=(event.client_id or "").encode(), value=encode(event)
                )
                sent += 1
                if sent % PROBE_EVERY == 0:
                    client = clients[probes % len(clients)]
                    past = datetime.now(UTC) - timedelta(minutes=5)
                    probe = bench_inbound_email(client, past, f"lat-{probes}")
                    sent_at[client].append(time.time())
                    await producer.send(topic, key=client.encode(), value=encode(probe))
                    probes += 1
            await asyncio.sleep(0.002)
        await producer.flush()
    finally:
        await producer.stop()
    return sent_at


async def _measure(
    quick: bool,
    events: int | None,
    split: bool = False,
    batch_records: int = 0,
    latency_rate: float | None = None,
) -> dict[str, float]:
    kafka = Settings().kafka
    n = events or (10_000 if quick else 200_000)
    lat_clients = 200 if quick else 1000
    lat_seconds = 3.0 if quick else 10.0
    breach_k = 10 if quick else 40
    root = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    hook = HookReceiver()
    await hook.start()  # the alert runner delivers every alert here, as to a customer's hook
    spec = new_spec(kafka, root, "pipe")
    alerting = WorkerProcess(
        replace(spec, role="alerts", webhook_url=hook.url, data_dir=str(root / "alerts"),
                chdb_dir=str(root / "chdb-alerts")),
        root / "alerts.log",
    )  # fmt: skip
    await asyncio.to_thread(create_topics, spec)
    topics = spec.settings().worker.topic_suffix
    interactions = f"interactions.v1{topics}"
    accepted = f"interactions.accepted.v1{topics}"  # what the ClickHouse runner reads
    facts, alerts = f"sla-facts.v1{topics}", f"sla-alerts.v1{topics}"
    if split:  # the processor and the ClickHouse runner as two processes
        worker = WorkerProcess(replace(spec, role="processor", data_dir=str(root / "proc")),
                               root / "processor.log")  # fmt: skip
        sinks: WorkerProcess | None = WorkerProcess(
            replace(spec, role="sinks", data_dir=str(root / "sinks")), root / "sinks.log"
        )
    else:
        worker, sinks = WorkerProcess(spec, root / "worker.log"), None
    watch = AlertWatch(kafka, alerts, spec.partitions)
    try:
        from bench.kafka_limits import canonical_events, payloads

        now = datetime.now(UTC)
        clients = [f"lat-{i:05d}" for i in range(lat_clients)]
        policies = [policy_event(c, now - timedelta(hours=1)) for c in clients]
        load = canonical_events(n, clients=max(10, n // 24), prefix="tp",
                                start=now - timedelta(seconds=120 + n * 0.001))  # fmt: skip
        records = [(c.encode(), encode(p)) for c, p in zip(clients, policies, strict=True)]
        records += payloads(load)
        total = len(records)
        batches = as_batch_records(records, spec.partitions, batch_records) if batch_records else []
        if batches:
            await produce_to_partitions(kafka, interactions, batches)
        else:
            await produce_all(kafka, interactions, records)

        if sinks is not None:
            await sinks.start()
            await sinks.first(lambda s: bool(s.get("started")), 120, "the sinks worker")
        await worker.start()
        spawned = time.time()
        first = await worker.first(lambda s: s.get("events_in", 0) > 0, 120, "the first event")
        broker_first = broker_cpu_s()
        done = await worker.first(
            lambda s: s.get("events_in", 0) >= total, 60 + total / 200, "the backlog"
        )
        while not await sink_caught_up(kafka, f"{spec.app_id}-sink-clickhouse",
                                       [facts, accepted], spec.partitions):  # fmt: skip
            if time.time() - done["t"] > 120:
                raise TimeoutError("the ClickHouse runner to commit every fact")
            await asyncio.sleep(0.1)
        sunk_at = time.time()
        sunk = worker.last
        broker_sunk = broker_cpu_s()
        cpu_s = sunk["cpu"] - first["cpu"]
        if sinks is not None:
            during = [h for h in sinks.history if first["t"] <= h["t"] <= sunk_at]
            if during:
                cpu_s += during[-1]["cpu"] - during[0]["cpu"]
        e2e_s = sunk_at - first["t"]
        e2e_rate = total / e2e_s
        proc_rate = total / (done["t"] - first["t"])
        if batches:  # end to end from batch records: the backlog phase only (see the docstring)
            broker_s = (broker_sunk or 0.0) - (broker_first or 0.0)
            return {
                "events": total,
                "batch_records": float(len(batches)),
                "batch_records_read": float(sunk.get("batches_in", 0)),
                "e2e_events_per_s": e2e_rate,
                "processor_events_per_s": proc_rate,
                "e2e_worker_cpu_s": cpu_s,
                "e2e_events_per_worker_cpu_s": total / max(1e-9, cpu_s),
                "e2e_broker_cpu_s": broker_s,
                "e2e_events_per_cluster_cpu_s": total / max(1e-9, cpu_s + broker_s),
                "facts_out": float(sunk.get("facts_out", 0)),
                "worker_rss_mb_after": worker.last.get("rss_kb", 0) / 1024,
            }

        # The alert runner from the alerts topic's end on: only the latency phases' alerts.
        await skip_to_end(kafka, f"{spec.app_id}-sink-alerts", alerts, spec.partitions)
        await alerting.start()
        await alerting.first(lambda s: bool(s.get("started")), 120, "the alert runner")
        await watch.start()
        lat_rate = latency_rate or 0.7 * e2e_rate
        lat_start, lat_broker, alerting_start = worker.last, broker_cpu_s(), alerting.last
        sent_at = await _paced_mix(kafka, interactions, clients, lat_rate, lat_seconds)
        lat_end, lat_broker_end = worker.last, broker_cpu_s()
        sinks_share = 0.0
        if sinks is not None:
            span = [h for h in sinks.history if lat_start["t"] <= h["t"] <= lat_end["t"]]
            if len(span) > 1:
                sinks_share = (span[-1]["cpu"] - span[0]["cpu"]) / (span[-1]["t"] - span[0]["t"])
        expected = sum(len(v) for v in sent_at.values())
        await wait_for(lambda: len(watch.breaches()) >= expected, 60 + expected / 100,
                       f"{expected} breach alerts")  # fmt: skip
        drained = worker.last  # every probe's breach is out: the phase's work is done
        alerting_end = alerting.last
        probes_sent = {client: list(times) for client, times in sent_at.items()}
        latencies = []
        for arrived, alert in watch.breaches():
            queue = sent_at[alert["client_id"]]
            if queue:
                latencies.append((arrived - queue.popleft()) * 1000)

        def probe_deliveries() -> list[tuple[float, dict[str, Any]]]:
            return [(t, a) for t, a in hook.breaches() if a["client_id"] in probes_sent]

        await wait_for(lambda: len(probe_deliveries()) >= expected, 60 + expected / 50,
                       f"{expected} breach webhooks")  # fmt: skip
        delivered = []
        for arrived, alert in sorted(probe_deliveries(), key=lambda item: item[0]):
            times = probes_sent[alert["client_id"]]
            if times:
                delivered.append((arrived - times.pop(0)) * 1000)

        # Deadlines 5-7 s ahead, nothing else sent: the breach must fire by itself.
        base = datetime.now(UTC) - timedelta(seconds=55)
        due_events = [
            bench_inbound_email(clients[j], base + timedelta(seconds=2 * j / breach_k), f"due-{j}")
            for j in range(breach_k)
        ]
        before = len(watch.seen)
        await produce_all(kafka, interactions, [(e.key or b"", encode(e)) for e in due_events])
        wanted = {f"{e.client_id}": e for e in due_events}

        def due_breaches() -> list[float]:
            out = []
            for arrived, alert in watch.seen[before:]:
                if alert.get("level") == "breach" and alert["client_id"] in wanted:
                    deadline = datetime.fromisoformat(alert["deadline"]).timestamp()
                    out.append((arrived - deadline) * 1000)
            return out

        await wait_for(lambda: len(due_breaches()) >= breach_k, 60, "the deadline breaches")
        delays = due_breaches()
        soonest = (base + timedelta(minutes=1)).timestamp() - 1  # the probes' deadlines are older

        def due_deliveries() -> list[float]:
            out = []
            for arrived, alert in hook.breaches():
                deadline = datetime.fromisoformat(alert["deadline"]).timestamp()
                if alert["client_id"] in wanted and deadline >= soonest:
                    out.append((arrived - deadline) * 1000)
            return out

        await wait_for(lambda: len(due_deliveries()) >= breach_k, 60, "the deadline webhooks")
        hook_delays = due_deliveries()
        return {
            "events": total,
            "worker_start_s": first["t"] - spawned,
            "e2e_events_per_s": e2e_rate,
            "processor_events_per_s": proc_rate,
            "e2e_worker_cpu_s": cpu_s,
            "e2e_events_per_worker_cpu_s": total / max(1e-9, cpu_s),
            # The broker shares the same 2 cores: workers + broker CPU per event.
            "e2e_broker_cpu_s": (broker_sunk or 0.0) - (broker_first or 0.0),
            "e2e_events_per_cluster_cpu_s": total
            / max(1e-9, cpu_s + (broker_sunk or 0.0) - (broker_first or 0.0)),
            "facts_out": float(sunk.get("facts_out", 0)),
            "latency_rate_events_per_s": lat_rate,
            "latency_events": float(len(latencies)),
            # What the processor did while the mix was sent (it should keep up at 70%).
            "latency_phase_processed_events_per_s": (
                (lat_end.get("events_in", 0) - lat_start.get("events_in", 0))
                / max(1e-9, lat_end["t"] - lat_start["t"])
            ),
            "latency_phase_send_s": lat_end["t"] - lat_start["t"],
            "latency_phase_sinks_cpu_share": sinks_share,
            "latency_phase_broker_cpu_share": ((lat_broker_end or 0.0) - (lat_broker or 0.0))
            / max(1e-9, lat_end["t"] - lat_start["t"]),
            "latency_phase_ticks_sent": float(
                lat_end.get("ticks_sent", 0) - lat_start.get("ticks_sent", 0)
            ),
            # From the first event sent until every probe's breach was on the alerts topic.
            "latency_phase_drain_s": drained["t"] - lat_end["t"],
            "latency_phase_events_in": float(
                drained.get("events_in", 0) - lat_start.get("events_in", 0)
            ),
            "latency_phase_ticks_per_event": (
                drained.get("ticks_sent", 0) - lat_start.get("ticks_sent", 0)
            )
            / max(1, drained.get("events_in", 0) - lat_start.get("events_in", 0)),
            "latency_phase_worker_cpu_s": drained["cpu"] - lat_start["cpu"],
            "latency_phase_alert_runner_cpu_s": alerting_end["cpu"] - alerting_start["cpu"],
            "latency_phase_worker_cpu_ms_per_event": 1000
            * (drained["cpu"] - lat_start["cpu"])
            / max(1, drained.get("events_in", 0) - lat_start.get("events_in", 0)),
            # Time the worker's event loop was runnable but had no CPU (the machine's load).
            "latency_phase_worker_runqueue_wait_share": (
                (lat_end.get("runq_wait", 0.0) - lat_start.get("runq_wait", 0.0))
                / max(1e-9, lat_end["t"] - lat_start["t"])
            ),
            "latency_phase_worker_cpu_share": (
                (lat_end["cpu"] - lat_start["cpu"]) / max(1e-9, lat_end["t"] - lat_start["t"])
            ),
            "event_to_alert_p50_ms": statistics.median(latencies),
            "event_to_alert_p99_ms": percentile(latencies, 99),
            "event_to_webhook_p50_ms": statistics.median(delivered),
            "event_to_webhook_p99_ms": percentile(delivered, 99),
            "breach_delay_p50_ms": statistics.median(delays),
            "breach_delay_max_ms": max(delays),
            "deadline_to_webhook_p50_ms": statistics.median(hook_delays),
            "deadline_to_webhook_p99_ms": percentile(hook_delays, 99),
            "deadline_to_webhook_max_ms": max(hook_delays),
            "worker_rss_mb_after": worker.last.get("rss_kb", 0) / 1024,
        }
    finally:
        await watch.stop()
        await alerting.stop()
        await hook.stop()
        await worker.stop()
        if sinks is not None:
            await sinks.stop()
        await asyncio.to_thread(delete_topics, spec)
        if os.environ.get("BENCH_KEEP") is None:
            import shutil

            shutil.rmtree(root, ignore_errors=True)


def measure(
    quick: bool = False,
    events: int | None = None,
    split: bool = False,
    batch_records: int = 0,
    latency_rate: float | None = None,
) -> dict[str, float]:
    """Run the three measurements (see the module docstring); figures by name.

    ``split``: the processor and the ClickHouse runner run as two worker processes
    (``shinrai worker --no-clickhouse-sink`` + ``--no-processor``); CPU is summed over both.
    ``batch_records``: the backlog as batch records of up to that many events, the backlog
    phase only (0: single records, every phase).
    ``latency_rate``: events/s of the latency phase instead of 70% of the measured rate (a
    fixed load to compare two versions on a machine whose load varies).
    """
    return asyncio.run(_measure(quick, events, split, batch_records, latency_rate))


def main(argv: list[str] | None = None) -> None:
    """``worker SPEC`` (the child) or the measurement (prints JSON)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        spec = WorkerSpec(**json.loads(Path(argv[1]).read_text()))
        asyncio.run(_child(spec))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="10k events instead of 200k")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--split", action="store_true",
                        help="processor and ClickHouse runner in two worker processes")  # fmt: skip
    parser.add_argument("--batch-records", type=int, default=0, metavar="N",
                        help="produce the backlog as batch records of up to N events "
                        "(end to end from batch records; the backlog phase only)")  # fmt: skip
    parser.add_argument("--latency-rate", type=float, default=None,
                        help="events/s of the latency phase (default: 70%% of the measured)")  # fmt: skip
    args = parser.parse_args(argv)
    if not 0 <= args.batch_records <= 10_000:
        parser.error("--batch-records: between 1 and 10000 events per record (0: off)")
    figures = measure(args.quick, args.events, args.split, args.batch_records, args.latency_rate)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
