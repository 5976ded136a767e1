"""Issue 18.7, the oracle as a test: the live worker equals a replay of what it read.

A seeded workload (60 clients, about 2,900 events over two weeks of history, 1-minute SLAs on a
24x7 calendar) goes through the real worker (Faust processor, ClickHouse and alert sink runners,
embedded chdb, a loopback webhook) in each order a user meets:

* ``history_before_worker``: the whole history on the topic, then the worker starts (a backlog);
* ``directory_then_history``: the worker runs, the directory is published (policies announced by
  the directory feed), then the history is produced into the running worker (README's order);
* ``history_interleaved_with_live``: the history arrives in chunks while live events (stamped
  with the wall clock) arrive for the same clients;
* ``future_dated_outlier``: one schema-valid event dated ten years ahead early in the backlog;
* ``oversized_record``: one invalid record of about 1 MB early in the backlog;
* ``kill_9_mid_backlog``: ``shinrai worker`` as a subprocess, killed with SIGKILL while it reads
  the backlog, then restarted.

The ``*_batched`` cases produce the history as ``shinrai produce`` does by default: ``event_batch``
records of up to SHINRAI_KAFKA__BATCH_EVENTS (500) events of one partition, written by the
producers' own batch writer (``oracle.produce_batched``), so the whole chain is under test: the
batch writer, the processor reading items and writing ``fact_batch`` / ``event_batch`` output,
the ClickHouse runner reading both. ``history_before_worker_batched`` has one schema-invalid item
inside a batch record: it must be dead-lettered alone (its record's origin and its index) and the
rest of its record processed. ``kill_9_mid_backlog_batched`` kills the worker while it works
through batch records: the record it was in is read again whole after the restart, and the
items already applied are duplicates the engine must absorb.

Each case then reads back what the worker read (``oracle.replay_of_what_was_read``: the
interactions topic minus what the worker dead-lettered), replays it with the engine, and asserts
ClickHouse ``sla_facts FINAL`` and the acknowledged alerts equal it: 0 lost, 0 extra,
0 duplicated, and the dead letters are exactly the expected rejections, each with its reason.
A failure names the counts and a few fact ids with their kinds, and the unexpected dead letters
counted by reason.

What each order leans on (issue 18): history read after the directory needs policies in force
from their effective time and no advance of a client without interactions (18.1); history
trickling into a live partition, or interleaved with live events, needs a per-client hold so it
is processed in event time (18.1); the outlier needs the clock-skew check at the processor edge
and a watermark robust to it (18.2); the oversized record needs dead letters cut to the record
limit (18.3); the kill needs a partition assigned with records queued to count as behind, so no
tick moves its clients to the wall clock before their queued events are read (18.4).
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

import orjson
import pytest

from engine.state import Event
from schemas.base import encode
from schemas.deadletter import MAX_RECORD_BYTES
from schemas.directory_records import directory_records
from schemas.events import Direction
from schemas.facts import FactKind
from shinrai.jobs.worker import Worker
from streams.processor import ProcessorStats
from tests.builders import interaction
from tests.integration.alerts.harness import SECRET
from tests.kafka_records import items

from .oracle import (
    HISTORY_ENDS,
    LiveFact,
    Produced,
    Raw,
    Workload,
    acknowledged_alerts,
    as_raw,
    compare,
    drained,
    facts_rows_query,
    kinds,
    live_facts,
    make_workload,
    produce,
    produce_batched,
    read_all,
    replay_of_what_was_read,
    truncated_dead_letter,
)
from .scenario import Pipeline, now, running_worker, wait_until

pytestmark = pytest.mark.integration

SEED = 18
CLIENTS = 60
THREADS = 20  # conversations per client: about 2,900 events in all
MAX_ALERT_AGE_S = 90 * 86400  # history's alerts are delivered too: every one is compared
CATCH_UP_S = 90.0
KILL_AT = 1500  # facts on the topic when the worker is killed: about a third of the backlog


@dataclass
class Run:
    """What a scenario leaves for the oracle: the live facts, when they were read, and the
    records the worker must dead-letter (origin -> what)."""

    until: datetime
    live: list[LiveFact]
    expected_dead: dict[str, str]
    note: str = ""
    facts_at_kill: int | None = None  # facts on the topic when the worker was killed


Scenario = Callable[[Pipeline, Workload, Path], Awaitable[Run]]


def _origins(p: Pipeline, produced: list[Produced]) -> dict[str, str]:
    topic = p.topic("interactions.v1")
    return {f"{topic}/{r.partition}/{r.offset}": r.what for r in produced if r.what != "event"}


async def _produce(p: Pipeline, records: list[Raw]) -> list[Produced]:
    return await asyncio.to_thread(
        produce, p.settings.kafka.bootstrap, p.topic("interactions.v1"), records
    )


async def _read_live(p: Pipeline, worker: Worker) -> tuple[datetime, list[LiveFact]]:
    """Wait until everything read is stored and delivered; the ClickHouse rows and the instant."""
    assert worker.sink is not None
    stats = worker.stats
    assert stats is not None
    # History read on a live partition holds its clients in event time until the import has
    # paused for the catch-up gap: what falls due then is ticked and fired (at its own instant).
    await drained(p.settings, within=CATCH_UP_S)  # all read: the gauge counts every hold
    await wait_until(lambda: stats.clients_held == 0, CATCH_UP_S, "the end of the history holds")
    await asyncio.sleep(1.0)
    await drained(p.settings, within=CATCH_UP_S)
    until = now()
    sink = worker.sink
    rows = await worker.in_sink_thread(
        lambda: sink.client.query(facts_rows_query(sink.database)).result_rows
    )
    return until, live_facts(rows)


async def _produce_batched(p: Pipeline, items: list[Event | Raw]) -> None:
    await asyncio.to_thread(produce_batched, p.settings, p.topic("interactions.v1"), items)


def _invalid_item(wl: Workload) -> tuple[Raw, bytes]:
    """A schema-invalid event of a known client (no such instant as its ``occurred_at``), and
    a marker to find it on the topic."""
    client = wl.clients[11]
    marker = f"bad-item-{client}"
    value = orjson.dumps(
        {
            "schema_version": 1,
            "type": "interaction",
            "event_id": marker,
            "client_id": client,
            "occurred_at": "not an instant",
        }
    )
    return (client.encode(), value, "schema-invalid item"), marker.encode()


def _batched_origins(p: Pipeline, markers: dict[bytes, str]) -> dict[str, str]:
    """Where each marked item landed (``topic/partition/offset item i``) -> what it is; and the
    topic really holds batch records (a record of one event would test nothing new)."""
    topic = p.topic("interactions.v1")
    log = read_all(p.settings.kafka.bootstrap, topic)
    assert any(r.items > 1 for r in log), "the batch writer wrote no batch record"
    found: dict[str, str] = {}
    for marker, what in markers.items():
        holding = [r for r in log if r.value is not None and marker in r.value]
        assert len(holding) == 1, f"{what}: {len(holding)} items hold {marker!r}"
        (rec,) = holding
        # inside a batch record with other events: the rest of it must still be processed
        assert rec.index is not None, f"{what} is not inside a batch record"
        assert rec.items > 1, f"{what} is alone in its batch record"
        found[rec.where(topic)] = what
    return found


def _read(stats: ProcessorStats, records: int) -> bool:
    return stats.events_in >= records


def _with_rare(records: list[Raw], rare: Raw, share: float) -> list[Raw]:
    """``rare`` placed ``share`` of the way into ``records`` (early in the backlog)."""
    at = int(len(records) * share)
    return [*records[:at], rare, *records[at:]]


async def history_before_worker(
    p: Pipeline, wl: Workload, _tmp: Path, rare: Raw | None = None
) -> Run:
    records = as_raw(wl.policies) + as_raw(wl.history)
    if rare is not None:
        records = _with_rare(records, rare, 0.05)
    produced = await _produce(p, records)
    async with running_worker(p.settings) as worker:
        until, live = await _read_live(p, worker)
    return Run(until, live, _origins(p, produced))


async def history_before_worker_batched(p: Pipeline, wl: Workload, _tmp: Path) -> Run:
    bad, marker = _invalid_item(wl)
    items: list[Event | Raw] = [*wl.policies, *wl.history]
    at = len(wl.policies) + len(wl.history) // 20  # early in the backlog
    items.insert(at, bad)
    await _produce_batched(p, items)
    expected = _batched_origins(p, {marker: bad[2]})
    async with running_worker(p.settings) as worker:
        until, live = await _read_live(p, worker)
    return Run(until, live, expected)


async def directory_then_history(p: Pipeline, wl: Workload, _tmp: Path) -> Run:
    async with running_worker(p.settings) as worker:
        stats = worker.stats
        assert stats is not None
        directory: list[tuple[bytes | None, bytes | None]] = list(directory_records(wl.directory()))
        await asyncio.to_thread(p.produce_raw, p.topic("directory.v1"), directory)
        await wait_until(
            lambda: (
                stats.policy_changes_out >= len(wl.clients) and stats.events_in >= len(wl.clients)
            ),
            60,
            "the directory feed's policy announcements",
        )
        # As `shinrai produce` sends an archive: in event-time order, but slower than the worker
        # reads (parsing takes time), so the worker reads each part up to the log end.
        produced = []
        part = 500
        for i in range(0, len(wl.history), part):
            produced += await _produce(p, as_raw(wl.history[i : i + part]))
            await wait_until(
                functools.partial(_read, stats, len(wl.clients) + len(produced)),
                60,
                "the part read",
            )
        until, live = await _read_live(p, worker)
    return Run(until, live, _origins(p, produced))


async def directory_then_history_batched(p: Pipeline, wl: Workload, _tmp: Path) -> Run:
    """As ``directory_then_history``, each part of the archive written as batch records."""
    async with running_worker(p.settings) as worker:
        stats = worker.stats
        assert stats is not None
        directory: list[tuple[bytes | None, bytes | None]] = list(directory_records(wl.directory()))
        await asyncio.to_thread(p.produce_raw, p.topic("directory.v1"), directory)
        await wait_until(
            lambda: (
                stats.policy_changes_out >= len(wl.clients) and stats.events_in >= len(wl.clients)
            ),
            60,
            "the directory feed's policy announcements",
        )
        part = 500
        for i in range(0, len(wl.history), part):
            chunk = wl.history[i : i + part]
            await _produce_batched(p, list(chunk))
            await wait_until(
                functools.partial(_read, stats, len(wl.clients) + i + len(chunk)),
                60,
                "the part read",
            )
        assert stats.batches_in > 0, "the worker read no batch record"
        until, live = await _read_live(p, worker)
    return Run(until, live, _batched_origins(p, {}))


async def history_interleaved_with_live(p: Pipeline, wl: Workload, _tmp: Path) -> Run:
    chunks = 6
    size = -(-len(wl.history) // chunks)
    produced: list[Produced] = []
    async with running_worker(p.settings) as worker:
        produced += await _produce(p, as_raw(wl.policies))
        for i in range(chunks):
            produced += await _produce(p, as_raw(wl.history[i * size : (i + 1) * size]))
            # Live traffic for a few clients of the history: a question answered within a
            # second, and one already two minutes old, never answered (its breach is overdue).
            t = now()
            live = []
            for c in wl.clients[i::chunks][:4]:
                thread = f"live-{i}"
                live += [
                    interaction(
                        t - timedelta(seconds=2),
                        client=c,
                        thread=thread,
                        direction=Direction.INBOUND,
                    ),
                    interaction(
                        t - timedelta(seconds=1),
                        client=c,
                        thread=thread,
                        direction=Direction.OUTBOUND,
                    ),
                ]
            live.append(
                interaction(
                    t - timedelta(minutes=2),
                    client=wl.clients[i],
                    thread="late",
                    direction=Direction.INBOUND,
                )
            )
            produced += await _produce(p, as_raw(live))
            await asyncio.sleep(0.5)
        until, live_rows = await _read_live(p, worker)
    return Run(until, live_rows, _origins(p, produced))


async def future_dated_outlier(p: Pipeline, wl: Workload, tmp: Path) -> Run:
    client = wl.clients[7]
    ahead = interaction(
        now() + timedelta(days=3653),
        client=client,
        thread="from-the-future",
        direction=Direction.INBOUND,
    )
    rare: Raw = (ahead.key, encode(ahead), "future-dated outlier")
    return await history_before_worker(p, wl, tmp, rare)


async def oversized_record(p: Pipeline, wl: Workload, tmp: Path) -> Run:
    # Invalid (an unknown event type), and about 1 MB: its dead letter, the original plus
    # headers, would not fit the 1,000,000-byte limit unless cut.
    pad = MAX_RECORD_BYTES - 600
    value = b'{"type":"interaction","schema_version":1,"note":"' + b"x" * pad + b'"}'
    rare: Raw = (wl.clients[11].encode(), value, "oversized record")
    run = await history_before_worker(p, wl, tmp, rare)
    run.note = f"oversized record: {len(value)} bytes"
    return run


# -- kill -9 -------------------------------------------------------------------------------------


class WorkerProcess:
    """``python -m shinrai worker`` with SHINRAI_* variables only, logging to a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env, self.log_path = env, log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shinrai", "worker"],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def stop(self, signum: int, timeout: float) -> int:
        assert self.proc is not None
        self.proc.send_signal(signum)
        code = self.proc.wait(timeout=timeout)
        self.close()
        return code

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # only our own child, by its handle
            self.proc.wait(timeout=30)
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


@pytest.fixture
def processes() -> Iterator[list[WorkerProcess]]:
    made: list[WorkerProcess] = []
    yield made
    for proc in made:
        proc.close()


def _worker_env(p: Pipeline, chdb: Path) -> dict[str, str]:
    s = p.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHINRAI_")}
    env.update(
        {
            "SHINRAI_KAFKA__BOOTSTRAP": s.kafka.bootstrap,
            "SHINRAI_KAFKA__TOPIC_PARTITIONS": str(s.kafka.topic_partitions),
            "SHINRAI_CLICKHOUSE__URL": f"chdb://{chdb}",
            "SHINRAI_CLICKHOUSE__DATABASE": "oracle",
            "SHINRAI_CLICKHOUSE__BATCH_AGE_S": "0.2",
            "SHINRAI_ALERTS__WEBHOOK_URL": s.alerts.webhook_url or "",
            "SHINRAI_ALERTS__SIGNING_SECRET": SECRET,
            "SHINRAI_ALERTS__MAX_AGE_S": str(MAX_ALERT_AGE_S),
            "SHINRAI_WORKER__APP_ID": s.worker.app_id,
            "SHINRAI_WORKER__DATA_DIR": str(s.worker.data_dir),
            "SHINRAI_WORKER__STORE": "rocksdb://",
            "SHINRAI_WORKER__TOPIC_SUFFIX": s.worker.topic_suffix,
            "SHINRAI_WORKER__TICK_INTERVAL_S": "0.1",
            "SHINRAI_WORKER__METRICS_PORT": "0",
            "SHINRAI_WORKER__SESSION_TIMEOUT_S": "6",
            "SHINRAI_WORKER__SINK_COMMIT_INTERVAL_S": "0.2",
            "SHINRAI_WORKER__SHUTDOWN_TIMEOUT_S": "10",
            "SHINRAI_LOG_LEVEL": "WARNING",
        }
    )
    return env


class FactCounter:
    """Facts on the facts topic so far, an item of a ``fact_batch`` record counted as a fact
    (the processor writes its output for batched inputs as batch records): read incrementally,
    so it can be asked often while the worker runs. Blocking: call through a thread."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        from kafka import KafkaConsumer, TopicPartition

        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        parts = [TopicPartition(topic, n) for n in self.consumer.partitions_for_topic(topic) or ()]
        assert parts, f"{topic} has no partitions"
        self.consumer.assign(parts)
        self.consumer.seek_to_beginning(*parts)
        self.facts = 0

    def count(self) -> int:
        """Facts read up to now (what the topic held a moment ago, at least)."""
        for messages in self.consumer.poll(timeout_ms=100, max_records=10_000).values():
            self.facts += sum(len(items(m.value)) for m in messages)
        return self.facts

    def count_to_end(self) -> int:
        """Every fact on the topic now."""
        ends = self.consumer.end_offsets(list(self.consumer.assignment()))
        deadline = time.monotonic() + 60
        while any(self.consumer.position(tp) < end for tp, end in ends.items()):
            assert time.monotonic() < deadline, "could not read the facts topic to its end"
            self.count()
        return self.facts

    def close(self) -> None:
        self.consumer.close()


def _uncommitted(bootstrap: str, group: str, topic: str) -> tuple[int, int]:
    """(records of ``topic`` past ``group``'s committed offsets, records in all): what a
    restarted member reads again or for the first time."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
        committed = {tp: meta.offset for tp, meta in offsets.items()}
        parts = [TopicPartition(topic, n) for n in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(parts)
        left = sum(end - max(committed.get(tp, 0), 0) for tp, end in ends.items())
        return left, sum(ends.values())
    finally:
        consumer.close()
        admin.close()


def kill_9_mid_backlog(processes: list[WorkerProcess], *, batched: bool = False) -> Scenario:
    async def scenario(p: Pipeline, wl: Workload, tmp: Path) -> Run:
        from .scenario import query_chdb_in_subprocess

        if batched:
            await _produce_batched(p, [*wl.policies, *wl.history])
            expected = _batched_origins(p, {})
        else:
            produced = await _produce(p, as_raw(wl.policies) + as_raw(wl.history))
            expected = _origins(p, produced)
        chdb = tmp / "chdb-worker"
        env = _worker_env(p, chdb)
        if batched:  # each batch record a step of its own: facts come in parts, the kill lands
            env["SHINRAI_WORKER__BATCH_MAX_BYTES"] = "16384"  # between them, mid-Faust-batch
        first = WorkerProcess(env, tmp / "worker.log")
        processes.append(first)
        first.start()
        facts = FactCounter(p.settings.kafka.bootstrap, p.topic("sla-facts.v1"))
        try:
            deadline = time.monotonic() + 90
            while (at_kill := await asyncio.to_thread(facts.count)) < KILL_AT:
                assert first.proc is not None
                assert first.proc.poll() is None, first.tail()
                assert time.monotonic() < deadline, "no facts within 90 s\n" + first.tail()
                await asyncio.sleep(0.02)
            assert first.stop(signal.SIGKILL, 30) == -signal.SIGKILL  # no flush, no commit
            left, records = await asyncio.to_thread(
                _uncommitted, p.settings.kafka.bootstrap, p.settings.worker.app_id,
                p.topic("interactions.v1"),
            )  # fmt: skip
            # Facts were written and input records are left uncommitted: the restart reads
            # every uncommitted record again whole (with batch records, items of the record in
            # progress may already be applied: duplicates the engine must absorb).
            assert left > 0, "the kill came after the whole backlog was committed"
        except BaseException:
            facts.close()
            raise

        second = WorkerProcess(env, tmp / "worker.log")
        processes.append(second)
        restarted = time.monotonic()
        second.start()
        try:
            await drained(p.settings, within=CATCH_UP_S)
            recovered = time.monotonic() - restarted
            # A live tail of history holds its clients for the catch-up gap (10 s): let it end.
            await asyncio.sleep(12.0)
            await drained(p.settings, within=CATCH_UP_S)
        except AssertionError as exc:
            facts.close()
            raise AssertionError(f"{exc}\n{second.tail()}") from exc
        until = now()
        assert second.stop(signal.SIGTERM, 60) == 0, second.tail()
        (rows,) = await asyncio.to_thread(
            query_chdb_in_subprocess, chdb, facts_rows_query("oracle")
        )
        try:
            total = await asyncio.to_thread(facts.count_to_end)
        finally:
            facts.close()
        note = (
            f"facts on the topic at the kill: {at_kill} (all told, with repeats: {total}); "
            f"input records not committed at the kill: {left} of {records}; "
            f"recovered (every group caught up) {recovered:.1f} s after the restart"
        )
        return Run(until, live_facts(rows), expected, note, at_kill)

    return scenario


# -- the test ------------------------------------------------------------------------------------


IN_PROCESS: dict[str, Scenario] = {
    "history_before_worker": history_before_worker,
    "directory_then_history": directory_then_history,
    "history_interleaved_with_live": history_interleaved_with_live,
    "future_dated_outlier": future_dated_outlier,
    "oversized_record": oversized_record,
    "history_before_worker_batched": history_before_worker_batched,
    "directory_then_history_batched": directory_then_history_batched,
}
NAMES = [*IN_PROCESS, "kill_9_mid_backlog", "kill_9_mid_backlog_batched"]


@pytest.mark.parametrize("name", NAMES)
async def test_live_worker_equals_a_replay_of_what_it_read(
    name: str, pipeline: Pipeline, processes: list[WorkerProcess], tmp_path: Path
) -> None:
    p = pipeline
    alerts = p.settings.alerts.model_copy(update={"max_age_s": MAX_ALERT_AGE_S})
    p.settings = p.settings.model_copy(update={"alerts": alerts})
    run_id = uuid.uuid4().hex[:6]
    wl = make_workload(run_id, now() - HISTORY_ENDS, seed=SEED, clients=CLIENTS, threads=THREADS)
    scenario = IN_PROCESS.get(name) or kill_9_mid_backlog(
        processes, batched=name.endswith("_batched")
    )

    from schemas.topics import ALL_TOPICS
    from shinrai.topic_admin import ensure_topics

    # The topics exist before anything is produced (a worker would create them on start).
    await asyncio.to_thread(ensure_topics, p.settings.kafka, ALL_TOPICS, suffix=p.suffix)
    started = time.monotonic()
    run = await scenario(p, wl, tmp_path)
    oracle = await asyncio.to_thread(replay_of_what_was_read, p.settings, run.until)
    acked, redelivered = acknowledged_alerts(p.receiver.requests)
    verdict = compare(
        name,
        oracle,
        run.live,
        acked,
        redelivered=redelivered,
        until=run.until,
        expected_dead=run.expected_dead,
    )
    print(f"\n{name}: {time.monotonic() - started:.1f} s; read {oracle.read} in {oracle.records} "
          f"records, replayed "
          f"{oracle.replayed}, dead-lettered {len(oracle.dead)}; {verdict.counts()}; {run.note}")  # fmt: skip

    # The workload covers what it claims to (a replay of nothing would equal nothing).
    assert oracle.read >= len(wl.history)
    assert {FactKind.WARNING, FactKind.BREACHED, FactKind.FULFILLED, FactKind.TRUST_CHANGED,
            FactKind.SPEED_OF_ANSWER} <= kinds(oracle.facts)  # fmt: skip
    if run.facts_at_kill is not None:
        assert run.facts_at_kill < len(oracle.facts), "the kill came after the backlog was read"
    problems = verdict.problems()
    if problems:
        pytest.fail(problems, pytrace=False)
    for origin, what in run.expected_dead.items():
        if what == "oversized record":
            cut = truncated_dead_letter(oracle, origin)
            assert cut is not None, f"the dead letter of the {what} says nothing of a cut"
            assert cut.value is not None
            assert len(cut.value) + sum(len(k) + len(v) for k, v in cut.headers.items()) <= (
                MAX_RECORD_BYTES
            )


def test_the_verdict_sees_what_is_lost_extra_duplicated_changed_and_unexpected() -> None:
    """The oracle's own check: a verdict that never fails would make every case above pass."""
    from collections import Counter

    from engine.alerts import alert_for
    from shinrai.settings import Settings

    from .oracle import Oracle, Record
    from .scenario import expected_facts

    until = now()
    wl = make_workload("self", until - HISTORY_ENDS, seed=SEED, clients=3, threads=12)
    facts = expected_facts([*wl.policies, *wl.history], Settings(), until=until)
    dead = Record(0, 5, b"c", b"x", {"x-shinrai-origin": b"t/0/5", "x-shinrai-reason": b"why"})
    # one item of a batch record: named by its record's origin and its index
    item = Record(0, 7, b"c", b"y", {"x-shinrai-origin": b"t/0/7", "x-shinrai-reason": b"bad",
                                     "x-shinrai-item": b"3"})  # fmt: skip
    oracle = Oracle(facts, len(wl.history), len(wl.history), len(wl.history), [dead, item], [])
    rows = [LiveFact(f.fact_id, f.kind.value, f.client_id, round(f.at.timestamp() * 1e6),
                     f.obligation_id, f.retracts) for f in facts]  # fmt: skip
    alerts = Counter(a.alert_id for a in (alert_for(f) for f in facts) if a is not None)

    same = compare(
        "same", oracle, rows, alerts, until=until,
        expected_dead={"t/0/5": "bad", "t/0/7 item 3": "bad item"},
    )  # fmt: skip
    assert same.problems() == ""

    moved = rows[1]
    live = [*rows[2:], rows[2], LiveFact("extra-id", "breached", "c", 0, None, None),
            LiveFact(moved.fact_id, moved.kind, moved.client_id, moved.at_us + 1, None, None)]  # fmt: skip
    lost_alert = next(iter(alerts))
    wrong = compare(
        "wrong",
        oracle,
        live,
        alerts - Counter([lost_alert]) + Counter(["extra-alert", "extra-alert"]),
        until=until,
        expected_dead={"t/0/6": "oversized record", "t/0/7 item 2": "bad item"},
    )
    assert [f for f, _, _ in wrong.lost] == [rows[0].fact_id]
    assert [f for f, _, _ in wrong.extra] == ["extra-id"]
    assert wrong.duplicated == [rows[2].fact_id]
    assert [c.split(":")[0] for c in wrong.changed] == [moved.fact_id]
    assert wrong.alerts_lost[0].endswith(lost_alert)
    assert wrong.alerts_extra == ["extra-alert"]
    assert wrong.alerts_duplicated == ["extra-alert x2"]
    assert wrong.dead_missing == ["oversized record at t/0/6", "bad item at t/0/7 item 2"]
    assert wrong.dead_unexpected == ["t/0/5: why", "t/0/7 item 3: bad"]
    assert "lost 1 extra 1 duplicated 1 changed 1" in wrong.problems()
