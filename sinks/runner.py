"""The sink runners' aiokafka consumer (options from ``shinrai.kafka_options``) and lag bookkeeping."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shinrai.kafka_options import aiokafka_options
from shinrai.settings import KafkaSettings

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer

    from shinrai.metrics import WorkerMetrics


def manual_commit_consumer(
    settings: KafkaSettings,
    topics: list[str],
    *,
    group_id: str,
    client_id: str,
    session_timeout_s: float = 30.0,
) -> AIOKafkaConsumer:
    """A consumer in its own group that never commits on its own (we commit after the sink).

    Not started and not subscribed: the caller subscribes with its rebalance listener.
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
