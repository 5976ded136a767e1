"""The ClickHouse runner: facts and raw interactions from Kafka into ClickHouse, at least once.

Loop: read a batch (``getmany``), decode, ``sink.add_*`` with each record's Kafka position,
``flush`` when the sink says so (size or age), and only then commit, per partition, the offset
after the last record read. A crash anywhere before the commit re-reads the records; the sink's
dedup tokens and high-water marks (and ReplacingMergeTree ``FINAL`` for facts the processor
re-emitted at new offsets) make the re-write invisible.

Every ClickHouse call runs on the worker's single sink thread (``executor``): chdb is in-process
and its calls block, so keeping them off the event loop keeps the SLA processor's timers on time,
and one thread means the client is never used concurrently. The buffers themselves are only
touched from the event loop, between flushes.

Decoding is ``sinks.clickhouse.records``: orjson plus field checks as strict as the models, into
row dicts the sink turns into Arrow columns directly (no pydantic model per record). A value the
checks refuse is handed to pydantic for the verdict: accepted, it is written from the model;
refused, it is skipped with a log line naming the field and the reason and a
``sink_skipped`` count (facts: ``invalid_fact``; interactions: ``not_an_interaction``, the
processor dead-letters those).

When the sink is unavailable the runner pauses every assigned partition (it keeps polling, so
it stays in the group), retries the same flush with backoff and resumes once it succeeded:
nothing is dropped and nothing is committed in between. The same holds at start: a sink that
could not be set up (ClickHouse unreachable, a chdb directory not writable, migrations missing)
is handed over with its ``setup_error`` and the runner sets it up with backoff before it reads
anything, so the worker starts and the processor and alerts run meanwhile. Either way the
gauge ``shinrai_sink_up{sink="clickhouse"}`` says whether ClickHouse takes writes, and one log
line marks each change of state (``clickhouse_unavailable``, ``clickhouse_available`` with
how long it was down), not each retry.

Both topics carry single records and batch records (``schemas.batches``: the processor writes
its output for batch inputs as ``fact_batch`` / ``event_batch``). A batch record becomes one row
per item, all at the record's Kafka position: they go into one flush together, so the dedup
token (offset ranges with row counts) and the high-water mark (the offset) cover the whole
record. A bad item is dead-lettered alone (its bytes, its index in the origin), the rest
written; a batch whose envelope is wrong is dead-lettered whole as it is read.

Records that buffer nothing (skipped as already written, not an interaction, invalid) are
committed too once nothing is buffered, so a partition whose last records are such does not
show a lag forever.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, TypeVar

from schemas.deadletter import DeadLetter
from shinrai.errors import SinkError
from shinrai.logging import get_logger
from shinrai.metrics import WorkerMetrics
from shinrai.settings import KafkaSettings
from sinks.alerts.records import DeliveryRecord
from sinks.clickhouse.rows import Position
from sinks.clickhouse.sink import DELIVERIES, FACTS, INTERACTIONS, ClickHouseSink
from sinks.runner import ConsumerRunner

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord, TopicPartition

log = get_logger("sinks.clickhouse.runner")
T = TypeVar("T")

_MAX_BACKOFF_S = 10.0
_IDLE_COMMIT_S = 1.0  # how often read records that buffered nothing are committed


class SinkHealth:
    """Whether a sink's target takes writes: the ``sink_up`` gauge and one log line per change.

    Retries are many and alike; an operator needs the instant it went down (with the error and
    what happens meanwhile) and the instant it came back (with the time it was down).
    """

    def __init__(self, metrics: WorkerMetrics, sink: str, group: str) -> None:
        self._gauge = metrics.sink_up.labels(sink)
        self._sink = sink
        self._group = group
        self._down_since: float | None = None
        self.up = True
        self._gauge.set(1)

    def down(self, error: str, *, during: str) -> None:
        """A write or set-up failed: log it once, until :meth:`restored`."""
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning(
                f"{self._sink}_unavailable",
                group=self._group,
                during=during,
                error=error[:300],
                action=f"retrying with backoff (up to {_MAX_BACKOFF_S:g} s); records wait in "
                "Kafka, uncommitted; SLA processing and alerts go on",
            )
        self.up = False
        self._gauge.set(0)

    def restored(self) -> None:
        """A write or set-up succeeded: log the recovery if it had been down."""
        if self._down_since is not None:
            log.warning(
                f"{self._sink}_available",
                group=self._group,
                down_s=round(time.monotonic() - self._down_since, 1),
            )
            self._down_since = None
        self.up = True
        self._gauge.set(1)


class ClickHouseRunner(ConsumerRunner):
    """Consumes ``facts_topic`` and ``interactions_topic`` into a set-up :class:`ClickHouseSink`.

    ``interactions_topic`` is the processor's accepted topic (``interactions.accepted.v1``): the
    interactions table holds what the SLA processor accepted, never what it dead-lettered.

    The sink must already be set up (connected, migrated) by the caller, who also closes it.
    Alert delivery records from an in-process alert runner come in through
    :meth:`record_delivery` and are written with the next flush.
    """

    task_name = "clickhouse-runner"

    def __init__(
        self,
        kafka: KafkaSettings,
        sink: ClickHouseSink,
        *,
        facts_topic: str,
        interactions_topic: str,
        group_id: str,
        metrics: WorkerMetrics,
        executor: Executor,
        batch_rows: int,
        poll_timeout_s: float = 0.2,
        session_timeout_s: float = 30.0,
        max_records: int = 5_000,
        setup_error: str | None = None,
    ) -> None:
        """Remember configuration only; :meth:`start` connects.

        ``setup_error``: why ``sink.setup()`` failed (None: the sink is set up); the runner
        then retries the set-up with backoff before reading anything, staying in its group.
        """
        super().__init__(
            kafka,
            topics=[facts_topic, interactions_topic],
            group_id=group_id,
            metrics=metrics,
            client_id=f"{group_id}-consumer",
            poll_timeout_s=poll_timeout_s,
            session_timeout_s=session_timeout_s,
            max_records=max_records,
        )
        self._sink = sink
        self._facts_topic = facts_topic
        self._interactions_topic = interactions_topic
        self._executor = executor
        # The sink raises SinkBackpressure at four batches; the runner flushes at one.
        self._batch_rows = batch_rows
        self._lock = asyncio.Lock()  # one flush+commit at a time (loop vs. rebalance callback)
        self._unflushed: dict[str, int] = {FACTS: 0, INTERACTIONS: 0, DELIVERIES: 0}
        self._deliveries: list[DeliveryRecord] = []
        sink.on_reject = self._rejected
        self._ready = setup_error is None
        self._idle_commit_at = 0.0
        self._adding = False  # a reject now is of a record being added: it was never counted
        self.health = SinkHealth(metrics, "clickhouse", group_id)
        if setup_error is not None:
            self.health.down(setup_error, during="setup")

    @property
    def ready(self) -> bool:
        """True once the sink is set up (connected, migrated, high-water marks read)."""
        return self._ready

    def record_delivery(self, record: DeliveryRecord) -> None:
        """Queue an alert delivery record for the next flush (called from the event loop)."""
        self._deliveries.append(record)

    # -- hooks of the read loop ----------------------------------------------------------------

    async def _run(self) -> None:
        if not self._ready:
            await self._set_up_sink()
            if not self._ready:
                return  # stopped while waiting for ClickHouse
        await super()._run()

    async def _set_up_sink(self) -> None:
        """``sink.setup()`` until it succeeds or the runner stops; read nothing meanwhile.

        Only ``SinkError`` (unreachable, not writable, migrations missing) is retried: a
        configuration error ends the loop, and the worker with it.
        """
        consumer = self._consumer
        if consumer is not None:
            consumer.pause(*consumer.assignment())
        delay = 0.5
        try:
            while not self._stopping.is_set():
                try:
                    await self._in_sink_thread(self._sink.setup)
                except SinkError as exc:
                    self.health.down(str(exc), during="setup")
                    await self._wait_polling(delay)
                    delay = min(delay * 2, _MAX_BACKOFF_S)
                    continue
                self._ready = True
                self.health.restored()
                return
        finally:
            if consumer is not None:
                consumer.resume(*consumer.assignment())

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        # Whatever we read from these partitions must be flushed and committed now, while we
        # still own them; otherwise their new owner re-reads it (harmless for correctness, but
        # work done twice).
        try:
            await self._flush_and_commit(reason="rebalance", retry=False)
        except SinkError as exc:
            log.warning("rebalance_flush_failed", group=self.group_id, error=str(exc))

    async def _handle(self, tp: TopicPartition, message: ConsumerRecord[bytes, bytes]) -> None:
        if self._sink.buffered >= self._batch_rows:
            await self._flush_and_commit(reason="size")
        self._add(tp, message)

    async def _after_batch(self) -> None:
        self._drain_deliveries()
        if self._sink.should_flush():
            await self._flush_and_commit(reason="batch")
        elif not self._sink.buffered and time.monotonic() >= self._idle_commit_at:
            # Records read since the last flush that buffered nothing (skipped) are final as
            # they are: commit them, or their partition shows a lag that never goes away.
            self._idle_commit_at = time.monotonic() + _IDLE_COMMIT_S
            async with self._lock:
                if not self._sink.buffered:
                    await self._commit()

    async def _finish(self) -> None:
        if not self._ready:
            # Nothing was read (the runner waited for ClickHouse): nothing to flush or commit.
            return
        try:
            await self._flush_and_commit(reason="shutdown", retry=False)
        except SinkError as exc:
            # Not committed, so the next start re-reads these records: nothing is lost.
            log.error("final_flush_failed", group=self.group_id, error=str(exc))

    def _add(self, tp: TopicPartition, message: ConsumerRecord[bytes, bytes]) -> None:
        """Decode one Kafka record and buffer it in the sink (the per-record hot path)."""
        value = message.value
        if value is None:
            self._metrics.sink_skipped.labels("tombstone").inc()
            return
        position = Position(tp.topic, tp.partition, message.offset)
        table = FACTS if tp.topic == self._facts_topic else INTERACTIONS
        sink = self._sink
        rejected = sink.rejected
        self._adding = True
        try:
            rows = sink.add_json_record(table, value, position)  # a batch record: its items
        finally:
            self._adding = False
        if rows:
            self._unflushed[table] += rows
        elif sink.rejected == rejected:  # not a wrong batch envelope (dead-lettered)
            self._metrics.sink_skipped.labels("already_written").inc()

    def _rejected(self, table: str, letter: DeadLetter) -> None:
        """A value the sink refused at flush (sink thread): log it with its reason, count it."""
        if not self._adding and self._unflushed.get(table):
            self._unflushed[table] -= 1
        field, _, reason = letter.reason.partition(": ")
        if table == FACTS:
            # The processor only emits valid facts; a bad record here is someone else's
            # write. Skipped, not fatal: one bad record must not stop the whole partition.
            log.error("invalid_fact_skipped", position=letter.origin, field=field,
                      reason=reason[:200], raw=letter.raw[:200])  # fmt: skip
            self._metrics.sink_skipped.labels("invalid_fact").inc()
            return
        # Invalid input and policy changes are the processor's business (it dead-letters
        # them); the interactions table holds valid interaction events only.
        log.debug("invalid_interaction_skipped", position=letter.origin, field=field,
                  reason=reason[:200])  # fmt: skip
        self._metrics.sink_skipped.labels("not_an_interaction").inc()

    def _count(self, table: str, added: bool) -> None:
        if added:
            self._unflushed[table] += 1
        else:
            self._metrics.sink_skipped.labels("already_written").inc()

    def _drain_deliveries(self) -> None:
        while self._deliveries and self._sink.buffered < self._batch_rows:
            record = self._deliveries.pop(0)
            self._count(DELIVERIES, self._sink.add_delivery(record))

    # -- flush and commit ----------------------------------------------------------------------

    async def _in_sink_thread(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _flush_and_commit(self, *, reason: str, retry: bool = True) -> None:
        """Flush the sink (retrying while it is unavailable, if ``retry``), then commit."""
        async with self._lock:
            if self._sink.buffered:
                await self._flush(reason, retry=retry)
            await self._commit()

    async def _flush(self, reason: str, *, retry: bool) -> None:
        delay = 0.2
        paused = False
        consumer = self._consumer
        try:
            while True:
                started = time.perf_counter()
                try:
                    written = await self._in_sink_thread(self._sink.flush)
                except SinkError as exc:
                    self._metrics.flush_failures.inc()
                    self.health.down(str(exc), during=f"flush ({reason})")
                    if not retry or self._stopping.is_set():
                        raise  # shutting down: stop() makes one last attempt
                    log.debug(
                        "flush_failed_retrying",
                        group=self.group_id,
                        error=str(exc)[:300],
                        buffered=self._sink.buffered,
                        delay_s=delay,
                    )
                    if consumer is not None and not paused:
                        # Stop fetching while the sink is down: the buffer must not grow.
                        consumer.pause(*consumer.assignment())
                        paused = True
                    await self._wait_polling(delay)
                    delay = min(delay * 2, _MAX_BACKOFF_S)
                    continue
                elapsed = time.perf_counter() - started
                self.health.restored()
                self._metrics.flush_seconds.observe(elapsed)
                for table, n in self._unflushed.items():
                    if n:
                        self._metrics.sink_rows.labels(table).inc(n)
                    self._unflushed[table] = 0
                log.debug("flushed", rows=written, reason=reason, seconds=round(elapsed, 4))
                return
        finally:
            if paused and consumer is not None:
                consumer.resume(*consumer.assignment())

    async def _wait_polling(self, seconds: float) -> None:
        """Sleep while still polling the (paused) consumer, so the group keeps us."""
        consumer = self._consumer
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and not self._stopping.is_set():
            if consumer is None:
                await asyncio.sleep(left)
                return
            # Paused partitions return nothing; the poll only proves we are alive.
            extra = await consumer.getmany(timeout_ms=int(min(left, 1.0) * 1000))
            # A partition assigned during the pause is not paused yet and may return records:
            # they are not added (the buffer is what failed); seek back to read them again.
            for tp, messages in extra.items():
                if messages:
                    consumer.pause(tp)
                    consumer.seek(tp, messages[0].offset)

    async def _commit(self) -> None:
        await self._commit_offsets(
            {tp: o for tp, o in self._read_to.items() if self.committed.get(tp) != o}
        )
