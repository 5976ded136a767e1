"""What every sink runner shares: the consumer, its lifecycle, the read loop, lag and commits.

A sink runner is a plain aiokafka consumer in its own group (never the Faust app's) that feeds one
destination and commits offsets by hand, only once that destination made the records durable:
``sinks.clickhouse.runner`` (facts and raw interactions into ClickHouse) and
``sinks.alerts.runner`` (alerts to webhooks). :class:`ConsumerRunner` owns what they have in
common - start (join the group with a rebalance listener), the consume loop as a task, stop
(end the loop, let the sink finish, leave the group), per-partition read positions, the lag
gauge and the commit call - and calls the subclass's hooks for what differs.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from shinrai.kafka_options import aiokafka_options
from shinrai.logging import get_logger
from shinrai.settings import KafkaSettings
from sinks.consumer_stop import stop_consumer

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

    from shinrai.metrics import WorkerMetrics

log = get_logger("sinks.runner")


def manual_commit_consumer(
    settings: KafkaSettings,
    topics: list[str],
    *,
    group_id: str,
    client_id: str,
    session_timeout_s: float = 30.0,
    group_instance_id: str | None = None,
) -> AIOKafkaConsumer:
    """A consumer in its own group that never commits on its own (we commit after the sink).

    Not started and not subscribed: the caller subscribes with its rebalance listener.
    ``group_instance_id`` makes it a static member (``worker.group_instance_id``).
    """
    from aiokafka import AIOKafkaConsumer

    return AIOKafkaConsumer(
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # A partition's consumer must be able to sit on a failing sink for a while (paused,
        # still polling) without being thrown out of the group.
        max_poll_interval_ms=600_000,
        session_timeout_ms=int(session_timeout_s * 1000),
        heartbeat_interval_ms=int(min(3.0, session_timeout_s / 3) * 1000),
        group_instance_id=group_instance_id,
        **aiokafka_options(settings),
    )


def record_lag(
    consumer: AIOKafkaConsumer, next_offsets: dict[Any, int], metrics: WorkerMetrics, group: str
) -> None:
    """Set ``consumer_lag`` for every assigned partition: log end minus the next offset to read.

    ``next_offsets`` holds, per TopicPartition, the offset after the last record the runner
    consumed. Partitions it has read nothing from yet, or whose log end the consumer has not
    learnt from a fetch, are left out rather than guessed.
    """
    for tp in consumer.assignment():
        end = consumer.highwater(tp)
        if end is None:
            continue
        position = next_offsets.get(tp)
        if position is None:
            continue
        metrics.consumer_lag.labels(group, tp.topic, str(tp.partition)).set(max(0, end - position))


class ConsumerRunner:
    """The lifecycle and read loop of a manual-commit sink runner; subclasses fill the hooks.

    Hooks (all optional but :meth:`_handle`): :meth:`_setup` before joining the group,
    :meth:`_handle` per record, :meth:`_after_batch` after each poll, :meth:`_on_revoked` while
    revoked partitions are still ours, :meth:`_finish` after the loop ended (flush and commit
    what was read) and :meth:`_teardown` last (also when joining the group failed).
    """

    task_name = "sink-runner"
    group_instance_id: str | None = None
    """Static group membership: set before :meth:`start` (the worker derives it per group)."""

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        topics: list[str],
        group_id: str,
        metrics: WorkerMetrics,
        client_id: str,
        poll_timeout_s: float = 0.2,
        session_timeout_s: float = 30.0,
        max_records: int = 500,
    ) -> None:
        """Remember configuration only; :meth:`start` connects."""
        self._kafka = kafka
        self._topics = topics
        self.group_id = group_id
        self._metrics = metrics
        self._client_id = client_id
        self._poll_ms = int(poll_timeout_s * 1000)
        self._session_timeout_s = session_timeout_s
        self._max_records = max_records
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._read_to: dict[TopicPartition, int] = {}  # next offset, per partition read
        self.committed: dict[TopicPartition, int] = {}
        """The last committed position per partition (tests and logs)."""

    # -- hooks ---------------------------------------------------------------------------------

    async def _setup(self) -> None:
        """Open what the destination needs before the group is joined."""

    async def _handle(self, tp: TopicPartition, message: ConsumerRecord[bytes, bytes]) -> None:
        """Take one record (its position is recorded by the loop after this returns)."""
        raise NotImplementedError

    async def _after_batch(self) -> None:
        """After each poll (flush by age, commit on an interval, ...)."""

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Revoked partitions are still ours here: flush and commit what was read of them."""

    async def _finish(self) -> None:
        """The loop has ended: make what was read durable and commit it."""

    async def _teardown(self) -> None:
        """Close what :meth:`_setup` opened."""

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Set up, join the consumer group and start the consume loop as a task."""
        from aiokafka import ConsumerRebalanceListener

        runner = self

        class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                await runner._on_revoked(set(revoked))
                for tp in revoked:
                    runner._read_to.pop(tp, None)

            async def on_partitions_assigned(self, assigned: Any) -> None:
                log.info("partitions_assigned", group=runner.group_id, partitions=len(assigned))

        await self._setup()
        consumer = manual_commit_consumer(
            self._kafka,
            self._topics,
            group_id=self.group_id,
            client_id=self._client_id,
            session_timeout_s=self._session_timeout_s,
            group_instance_id=self.group_instance_id,
        )
        consumer.subscribe(self._topics, listener=_Listener())
        try:
            await consumer.start()
        except BaseException:
            await self._teardown()
            raise
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(), name=self.task_name)
        log.info("runner_started", group=self.group_id, topics=sorted(self._topics))

    async def stop(self) -> None:
        """Stop reading, let the destination finish what was read, commit it, leave the group."""
        self._stopping.set()
        if self._task is not None:
            try:
                await self._task
            except Exception as exc:  # already logged by the loop; stop must still finish
                log.error("runner_failed", group=self.group_id, error=str(exc))
            self._task = None
        await self._finish()
        await self._teardown()
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await stop_consumer(consumer, name=self.group_id)
        log.info("runner_stopped", group=self.group_id)

    @property
    def done(self) -> asyncio.Task[None] | None:
        """The consume loop's task (it only ends by :meth:`stop` or a fatal error)."""
        return self._task

    # -- the loop ------------------------------------------------------------------------------

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        while not self._stopping.is_set():
            batch = await consumer.getmany(timeout_ms=self._poll_ms, max_records=self._max_records)
            for tp, messages in batch.items():
                for message in messages:
                    await self._handle(tp, message)
                    self._read_to[tp] = message.offset + 1
            record_lag(consumer, self._read_to, self._metrics, self.group_id)
            await self._after_batch()

    async def _commit_offsets(
        self, offsets: dict[TopicPartition, int]
    ) -> dict[TopicPartition, int]:
        """Commit ``offsets`` of partitions still assigned; returns those whose commit failed.

        A failed commit loses nothing: the records are final already, so failing to commit only
        means they are read (and skipped by the destination's dedup) again later.
        """
        consumer = self._consumer
        if consumer is None:
            return {}
        assigned = consumer.assignment()
        offsets = {tp: o for tp, o in offsets.items() if tp in assigned}
        if not offsets:
            return {}
        from aiokafka.errors import KafkaError

        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            log.warning("commit_failed", group=self.group_id, error=str(exc))
            return offsets
        self.committed.update(offsets)
        return {}
