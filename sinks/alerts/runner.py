"""The alert runner: alerts from Kafka to webhooks, each offset committed once its alert is final.

Commit rule (at least once): an alert's offset is committed only when every delivery it started
reached a FINAL outcome — ``delivered``, ``failed`` (permanent 4xx) or ``dead_letter`` (max age)
— and that outcome is on disk in the SQLite delivered store. There is no "durably queued" state:
the Kafka topic itself is the queue, and an uncommitted alert is simply read again after a
restart. The store then skips every delivery already finished, so a restart re-sends only what
had not finished; a crash between a 2xx and the store mark re-sends with the same
``Idempotency-Key`` (the receiver's dedup handles that window).

Deliveries finish out of order (a slow target must not hold back a fast one), so the commit
point of a partition is the oldest alert still unfinished (:class:`OffsetTracker`). Isolation:
the runner has its own consumer group and task, so a slow webhook never slows SLA processing;
within the runner :class:`AlertDeliverer` bounds concurrency globally and per target.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import ValidationError

from schemas.alerts import Alert
from schemas.directory import ClientDirectory
from shinrai.logging import get_logger
from shinrai.metrics import WorkerMetrics
from shinrai.settings import AlertSettings, KafkaSettings
from sinks.alerts.delivery import AlertDeliverer
from sinks.alerts.records import DeadLetterSink, DeliveryLog, DeliveryRecord, Outcome
from sinks.alerts.retry import DeliveryOptions
from sinks.alerts.routing import RoutingConfig
from sinks.alerts.store import DeliveredStore
from sinks.offsets import OffsetTracker
from sinks.runner import ConsumerRunner

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord, TopicPartition

log = get_logger("sinks.alerts.runner")

_Slot = tuple["TopicPartition", int]


class _NotifyingStore:
    """A DeliveredStore that tells the runner when a key is durably finished."""

    def __init__(self, inner: DeliveredStore, on_mark: Callable[[str, Outcome], None]) -> None:
        self._inner = inner
        self._on_mark = on_mark

    def open(self) -> None:
        self._inner.open()

    def close(self) -> None:
        self._inner.close()

    def status(self, key: str) -> Outcome | None:
        return self._inner.status(key)

    def mark(self, key: str, *, alert_id: str, target: str, outcome: Outcome, at: datetime) -> None:
        self._inner.mark(key, alert_id=alert_id, target=target, outcome=outcome, at=at)
        self._on_mark(key, outcome)  # after the mark is on disk, never before

    def forget(self, key: str) -> bool:
        return self._inner.forget(key)


class _CountingLog:
    """A DeliveryLog that also counts attempts per outcome."""

    def __init__(self, inner: DeliveryLog, metrics: WorkerMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    def record(self, record: DeliveryRecord) -> None:
        self._metrics.alert_attempts.labels(record.outcome).inc()
        self._inner.record(record)


class AlertRunner(ConsumerRunner):
    """Consumes the alerts topic into an :class:`AlertDeliverer` (which it owns)."""

    task_name = "alert-runner"

    def __init__(
        self,
        kafka: KafkaSettings,
        alerts: AlertSettings,
        *,
        topic: str,
        group_id: str,
        routing: RoutingConfig,
        delivery_log: DeliveryLog,
        store: DeliveredStore,
        metrics: WorkerMetrics,
        dead_letters: DeadLetterSink | None = None,
        directory: ClientDirectory | None = None,
        options: DeliveryOptions | None = None,
        commit_interval_s: float = 0.5,
        poll_timeout_s: float = 0.2,
        session_timeout_s: float = 30.0,
        grace_s: float = 10.0,
    ) -> None:
        """Remember configuration only; :meth:`start` connects.

        ``grace_s``: at stop, how long running deliveries may take to finish; those still
        running then are cancelled unmarked and uncommitted, so the next start sends them (same
        Idempotency-Key).
        """
        super().__init__(
            kafka,
            topics=[topic],
            group_id=group_id,
            metrics=metrics,
            client_id=f"{group_id}-c",
            poll_timeout_s=poll_timeout_s,
            session_timeout_s=session_timeout_s,
            max_records=500,
        )
        self._commit_interval = commit_interval_s
        self._grace_s = grace_s
        self.deliverer = AlertDeliverer(
            settings=alerts,
            routing=routing,
            directory=directory or ClientDirectory(),
            log=_CountingLog(delivery_log, metrics),
            store=_NotifyingStore(store, self._on_mark),
            dead_letters=dead_letters,
            options=options,
        )
        self._tracker: OffsetTracker[TopicPartition] = OffsetTracker()
        self._waiting: dict[str, list[_Slot]] = {}  # delivery key -> alerts waiting for it
        self._open: dict[_Slot, set[str]] = {}  # alert slot -> keys not finished yet
        self._finished_early: set[str] = set()
        self._next_commit: float | None = None

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop reading; give running deliveries ``grace_s`` (default: the constructor's) to
        finish; commit; close."""
        if grace_s is not None:
            self._grace_s = grace_s
        await super().stop()

    def update_directory(self, directory: ClientDirectory) -> None:
        """Route alerts added from now on with a newer client directory."""
        self.deliverer.update_directory(directory)

    # -- hooks of the read loop ----------------------------------------------------------------

    async def _setup(self) -> None:
        await self.deliverer.setup()

    async def _teardown(self) -> None:
        await self.deliverer.close()

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._commit()
        for tp in revoked:
            # Unfinished alerts of a revoked partition are re-read by its new owner; their
            # deliveries here still finish (the store keeps the new owner from sending a
            # finished key twice).
            self._tracker.forget(tp)

    async def _handle(self, tp: TopicPartition, message: ConsumerRecord[bytes, bytes]) -> None:
        await self._add(tp, message.offset, message.value)

    async def _after_batch(self) -> None:
        await self._release_digests()
        if self.deliverer.pending == 0:
            # Drains the deliverer's result list (and surfaces a failed delivery task).
            await self.deliverer.flush()
        now = asyncio.get_running_loop().time()
        if self._next_commit is None:
            self._next_commit = now + self._commit_interval
        elif now >= self._next_commit:
            await self._commit()
            self._next_commit = now + self._commit_interval

    async def _finish(self) -> None:
        try:
            async with asyncio.timeout(self._grace_s):
                # On timeout the unfinished deliveries are cancelled (close() would anyway).
                await self.deliverer.flush()
        except TimeoutError:
            log.warning("deliveries_unfinished_at_shutdown", group=self.group_id)
        except Exception as exc:
            log.error("delivery_failed_at_shutdown", group=self.group_id, error=str(exc))
        await self._commit()
        log.info("alerts_unfinished_at_stop", group=self.group_id,
                 unfinished=self._tracker.outstanding())  # fmt: skip

    async def _add(self, tp: TopicPartition, offset: int, value: bytes | None) -> None:
        slot: _Slot = (tp, offset)
        self._tracker.begin(tp, offset)
        try:
            alert = Alert.model_validate_json(value or b"")
        except ValidationError as exc:
            # Nothing to deliver; skipping it must not block the partition's commit point.
            log.error("invalid_alert_skipped", topic=tp.topic, partition=tp.partition,
                      offset=offset, error=str(exc)[:300])  # fmt: skip
            self._metrics.alerts_invalid.inc()
            self._tracker.done(tp, offset)
            return
        started = await self.deliverer.add(alert)
        # Keys not started are finished already (store) or running for an earlier offset of
        # the same partition (alerts are keyed by client), which holds the commit point anyway.
        # add() may wait for a free slot after starting a delivery, so a started delivery can
        # have finished before add() returned: those keys are in _finished_early.
        keys = {d.key for d in started}
        early = keys & self._finished_early
        self._finished_early -= early
        keys -= early
        if not keys:
            self._tracker.done(tp, offset)
            return
        self._open[slot] = keys
        for key in keys:
            self._waiting.setdefault(key, []).append(slot)

    async def _release_digests(self) -> None:
        """Send the owners' digests whose window ended; their held alerts already wait on the
        digest's key (``_add``), so the digest's mark releases them all."""
        await self.deliverer.release_digests()

    def _on_mark(self, key: str, outcome: Outcome) -> None:
        if outcome in ("delivered", "failed", "dead_letter"):
            self._metrics.alert_deliveries.labels(outcome).inc()
        slots = self._waiting.pop(key, None)
        if slots is None:
            self._finished_early.add(key)  # add() has not returned yet; _add() picks it up
            return
        for slot in slots:
            keys = self._open.get(slot)
            if keys is None:
                continue
            keys.discard(key)
            if not keys:
                del self._open[slot]
                self._tracker.done(*slot)

    async def _commit(self) -> None:
        failed = await self._commit_offsets(self._tracker.take_commits())
        if failed:
            # Put them back: the next commit tries again (a later position supersedes them).
            self._tracker.retry(failed)
