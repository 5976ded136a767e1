"""A poison message on a partition: dead-lettered and counted, and the partition keeps flowing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import pytest

from schemas.base import encode
from schemas.deadletter import REASON
from schemas.facts import FactKind
from tests.builders import inbound_email, outbound_email, policy_event

from .scenario import (
    Pipeline,
    now,
    read_topic,
    running_worker,
    wait_until,
)

pytestmark = pytest.mark.integration


async def test_poison_is_dead_lettered_and_the_partition_keeps_flowing(pipeline: Pipeline) -> None:
    p = pipeline
    client = f"acme-{uuid.uuid4().hex[:6]}"
    key = client.encode()
    topic = p.topic("interactions.v1")
    garbage = b'{"event_id": "x", "direction": "sideways"'  # not even JSON
    async with running_worker(p.settings) as worker:
        assert worker.stats is not None
        stats = worker.stats
        await p.send(policy_event(client, now() - timedelta(seconds=60)))
        await wait_until(lambda: stats.events_in >= 1, 60, "the policy event")
        before = worker.metrics.value("shinrai_events_invalid_total")
        assert before == 0

        # The reply a second after the inbound: at one instant their order would be decided by
        # the event ids' tie-break (random here), and a reply first answers nothing.
        t = now()
        inbound = inbound_email(client, t - timedelta(seconds=1))
        reply = outbound_email(client, t)
        # Same key, so the same partition: poison first, then a valid event behind it.
        records: list[tuple[bytes | None, bytes | None]] = [(key, garbage), (key, encode(inbound))]
        await asyncio.to_thread(p.produce_raw, topic, records)
        p.produced.append(inbound)
        await asyncio.sleep(0.3)
        await p.send(reply)

        await wait_until(lambda: stats.facts_out >= 2, 30, "facts of the events after the poison")
        await wait_until(
            lambda: worker.metrics.value("shinrai_events_invalid_total") == 1, 10, "DLQ count"
        )
        await wait_until(
            lambda: (worker.metrics.value("shinrai_sink_rows_written_total",
                                          {"table": "interactions"}) or 0) >= 2,
            10, "the valid interactions written",
        )  # fmt: skip
        port = worker.metrics_port
        async with httpx.AsyncClient() as http:
            scraped = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        await asyncio.sleep(1.0)  # anything more would have been written by now
        skipped = worker.metrics.value(
            "shinrai_sink_records_skipped_total", {"reason": "not_an_interaction"}
        )
        written = worker.metrics.value("shinrai_sink_rows_written_total", {"table": "interactions"})

    assert "shinrai_events_invalid_total 1.0" in scraped
    assert 'shinrai_dead_letters_total{cause="invalid"} 1.0' in scraped
    # Storage holds what the processor accepted: the two valid interactions, never the poison
    # (the ClickHouse runner reads the accepted topic, so it never even sees it).
    assert written == 2
    assert not skipped

    records_facts = read_topic(p.settings.kafka.bootstrap, p.topic("sla-facts.v1"))
    kinds = [f for k, f in records_facts if k == key]
    assert any(f and FactKind.FULFILLED.value.encode() in f for f in kinds)

    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        p.topic("interactions.dlq"),
        bootstrap_servers=p.settings.kafka.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    try:
        dead = list(consumer)
    finally:
        consumer.close()
    assert len(dead) == 1
    assert dead[0].value == garbage  # the original bytes, never re-encoded
    assert dead[0].key == key
    assert dict(dead[0].headers)[REASON]
