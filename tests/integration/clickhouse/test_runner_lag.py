"""The ClickHouse runner commits every record it read, also those that buffer nothing.

Records the runner skips (a policy change on the accepted topic, a tombstone, an interaction
already written) leave nothing to flush; when they are the last of a partition, the runner must
still commit past them, or monitoring shows a lag of a few records forever (issue 17.7). Real
broker, real chdb. Also: a runner handed a sink whose set-up failed sets it up itself before it
reads anything, and then writes what waited in Kafka.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from schemas.base import encode
from shinrai.metrics import WorkerMetrics
from shinrai.settings import ClickHouseSettings, KafkaSettings
from sinks.clickhouse.runner import ClickHouseRunner
from sinks.clickhouse.sink import ClickHouseSink
from tests.builders import interaction, policy_event
from tests.integration.pipeline.scenario import group_caught_up, now, wait_until

pytestmark = pytest.mark.integration


def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes | None]]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value).get(timeout=30)
    finally:
        producer.close()


@pytest.mark.parametrize("set_up_by", ["worker", "runner"])
async def test_trailing_records_that_buffer_nothing_are_committed(
    set_up_by: str,
    kafka_settings: KafkaSettings,
    topic_factory: Callable[..., str],
    ch_settings: Callable[..., ClickHouseSettings],
) -> None:
    facts_topic = topic_factory("lag-facts", partitions=2)
    events_topic = topic_factory("lag-events", partitions=2)
    t = now() - timedelta(hours=1)
    written: list[tuple[bytes, bytes | None]] = []
    skipped: list[tuple[bytes, bytes | None]] = []
    for n in range(4):
        client = f"lag-{n}-{uuid.uuid4().hex[:6]}"
        event = interaction(t + timedelta(seconds=n), client=client)
        written.append((event.key, encode(event)))
        # What the runner skips: a policy change (the processor's business) and a tombstone.
        skipped += [(event.key, encode(policy_event(client, t))), (event.key, None)]
    await asyncio.to_thread(produce, kafka_settings.bootstrap, events_topic, written)

    metrics = WorkerMetrics()
    executor = ThreadPoolExecutor(max_workers=1)
    sink = ClickHouseSink(ch_settings(batch_age_s=0.2))
    setup_error = None
    if set_up_by == "worker":
        await asyncio.get_running_loop().run_in_executor(executor, sink.setup)
    else:
        setup_error = "not set up: the runner does it"
    group = f"lag-{uuid.uuid4().hex[:8]}"
    runner = ClickHouseRunner(
        kafka_settings, sink, facts_topic=facts_topic, interactions_topic=events_topic,
        group_id=group, metrics=metrics, executor=executor, batch_rows=1000,
        session_timeout_s=6, setup_error=setup_error,
    )  # fmt: skip
    assert runner.ready is (setup_error is None)
    await runner.start()

    def caught_up() -> bool:
        return group_caught_up(kafka_settings.bootstrap, group, [facts_topic, events_topic])

    try:
        await wait_until(caught_up, 30, "the interactions flushed and committed", every=0.5)
        # Then only records that buffer nothing, read after that flush: the last of each
        # partition, with no flush to come after them.
        await asyncio.to_thread(produce, kafka_settings.bootstrap, events_topic, skipped)
        await wait_until(caught_up, 15, "the skipped records committed too", every=0.5)
        assert runner.ready
        assert metrics.value("shinrai_sink_up", {"sink": "clickhouse"}) == 1
        lags = [
            metrics.value(
                "shinrai_consumer_lag", {"group": group, "topic": events_topic, "partition": p}
            )
            for p in ("0", "1")
        ]
        assert all(lag in (None, 0) for lag in lags), lags
        assert any(lag == 0 for lag in lags), lags  # measured, not merely absent
        rows = await asyncio.get_running_loop().run_in_executor(
            executor, lambda: sink.client.query("SELECT count() FROM interactions").result_rows
        )
        assert rows[0][0] == len(written)
        assert metrics.value(
            "shinrai_sink_records_skipped_total", {"reason": "not_an_interaction"}
        ) == len(written)
        assert metrics.value("shinrai_sink_records_skipped_total", {"reason": "tombstone"}) == len(
            written
        )
    finally:
        await runner.stop()
        await asyncio.get_running_loop().run_in_executor(executor, sink.close)
        executor.shutdown()
