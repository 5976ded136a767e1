"""Batch records through a real broker and a real Faust worker: the same events produced once as
single records and once as batch records (``schemas.batches``, on private topics of their own)
give the same facts and the same dead letters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest

from schemas.base import encode
from schemas.batches import EVENT_BATCH, join, partition_for
from schemas.deadletter import ITEM, ORIGIN, REASON
from schemas.events import ClientPolicyChanged, InteractionEvent
from tests.builders import inbound_email, outbound_email, policy_event

from .processor_harness import (
    PARTITIONS,
    CollectorFactory,
    Env,
    collector,
    now,
    processor_env,
    wait_until,
)

pytestmark = pytest.mark.integration
_ = (collector, processor_env)  # fixtures used by name

CLIENTS = ["acme", "globex", "initech", "umbrella", "hooli", "stark"]
BATCH_SIZE = 4


def the_log() -> list[tuple[bytes, bytes]]:
    """(key, value) in log order: each client's policy, threads answered in time, late or never,
    follow-ups, an event without a client and an invalid one among them."""
    t0 = now() - timedelta(minutes=20)  # every deadline has passed: facts settled at once
    out: list[InteractionEvent | ClientPolicyChanged] = []
    for client in CLIENTS:
        out.append(policy_event(client, t0 - timedelta(minutes=1)))
    rows = [(e.key or b"_unknown", encode(e)) for e in out]
    for n, client in enumerate(CLIENTS):
        start = t0 + timedelta(seconds=n)
        thread = [inbound_email(client, start, thread="a"), inbound_email(client, start, "b")]
        if n % 3 != 2:  # answered: in time, or late
            thread.append(outbound_email(client, start + timedelta(seconds=20 + 50 * (n % 3))))
        if n % 2 == 0:
            thread.append(inbound_email(client, start + timedelta(minutes=3), thread="a"))
        rows += [(client.encode(), encode(e)) for e in thread]
    key, value = rows[-1]
    invalid = value.replace(b'"direction":"inbound"', b'"direction":"sideways"')
    rows.insert(len(rows) // 2, (key, invalid))
    nobody = inbound_email("x", t0).model_copy(update={"client_id": None})
    rows.insert(len(rows) // 3, (b"_unknown", encode(nobody)))
    return rows


def batch_records(rows: list[tuple[bytes, bytes]]) -> list[tuple[int, bytes, bytes]]:
    """(partition, key, value) of batch records of up to ``BATCH_SIZE`` events of one partition
    each, in the partition's order, keyed by their first item."""
    per_partition: dict[int, list[tuple[bytes, bytes]]] = {}
    for key, value in rows:
        per_partition.setdefault(partition_for(key, PARTITIONS), []).append((key, value))
    out = []
    for partition, items in sorted(per_partition.items()):
        for n in range(0, len(items), BATCH_SIZE):
            group = items[n : n + BATCH_SIZE]
            out.append((partition, group[0][0], join(EVENT_BATCH, [v for _, v in group])))
    return out


def produce_to_partitions(env: Env, records: list[tuple[int, bytes, bytes]]) -> None:
    """Produce each record to its partition explicitly (as a batch writer does), acks=all."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=env.kafka.bootstrap, acks="all", linger_ms=0)
    try:
        for partition, key, value in records:
            producer.send(env.topics.interactions, key=key, value=value, partition=partition)
        producer.flush(timeout=30)
    finally:
        producer.close()


async def _run(
    env: Env, collector: CollectorFactory, events: int
) -> tuple[dict[str, list[str]], list[tuple[bytes | None, bytes]], int, int]:
    """Run a worker over the topics of ``env`` until it read ``events`` events and every fact it
    produced was read back: per client its fact ids in order, the dead letters (value, reason),
    events read and batch records read."""
    facts = await collector(env.topics.facts)
    dlq = await collector(env.topics.dlq)
    app, stats = env.build(env.new_app_id())
    await app.start()
    try:
        await wait_until(lambda: stats.events_in == events and stats.partitions_catching_up == 0)
        await asyncio.sleep(1.0)  # ticks of what fell due as the partitions went live
        await facts.wait_for(lambda got: len(got) == stats.facts_out)
        await dlq.wait_for(lambda got: len(got) == stats.events_invalid)
    finally:
        await app.stop()
    per_client: dict[str, list[str]] = {}
    for fact in facts.facts():
        per_client.setdefault(fact.client_id, []).append(fact.fact_id)
    dead = sorted((r.value or b"", r.headers[REASON]) for r in dlq.records)
    items = [r for r in dlq.records if ITEM in r.headers]
    if stats.batches_in:  # each item's dead letter names its batch record and index
        assert len(items) == len(dlq.records)
        assert all(r.headers[ORIGIN].startswith(env.topics.interactions.encode()) for r in items)
    else:
        assert items == []
    return per_client, dead, stats.events_in, stats.batches_in


async def test_batch_records_give_the_facts_single_records_give(
    processor_env: Callable[[], Env], collector: CollectorFactory
) -> None:
    rows = the_log()
    single, batched = processor_env(), processor_env()
    await asyncio.to_thread(single.produce, single.topics.interactions, list(rows))
    records = batch_records(rows)
    await asyncio.to_thread(produce_to_partitions, batched, records)

    facts_1, dead_1, events_1, batches_1 = await _run(single, collector, len(rows))
    facts_2, dead_2, events_2, batches_2 = await _run(batched, collector, len(rows))

    assert set(facts_1) == set(CLIENTS)
    assert sum(map(len, facts_1.values())) >= 3 * len(CLIENTS)  # opened, warned, met, breached
    assert facts_2 == facts_1
    assert len(dead_1) == 1
    assert dead_2 == dead_1
    assert (events_1, batches_1) == (len(rows), 0)
    assert (events_2, batches_2) == (len(rows), len(records))
    assert len(records) < len(rows)  # batches of several events
