"""Poison messages go to the DLQ with their original bytes; the partition keeps flowing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest

from schemas.base import encode
from schemas.deadletter import ORIGIN, REASON, SOURCE
from schemas.facts import FactKind
from tests.builders import inbound_email, outbound_email, policy_event

from .processor_harness import (
    CollectorFactory,
    Env,
    collector,
    now,
    processor_env,
    wait_until,
)

pytestmark = pytest.mark.integration
_ = (collector, processor_env)  # fixtures used by name

UNDECODABLE = b"\xff\xfe not json at all \x00"


async def test_poison_goes_to_the_dlq_and_later_events_are_processed(
    processor_env: Callable[[], Env], collector: CollectorFactory
) -> None:
    env = processor_env()
    facts = await collector(env.topics.facts)
    dlq = await collector(env.topics.dlq)
    t0 = now() - timedelta(seconds=20)
    inbound = inbound_email("acme", t0 + timedelta(seconds=2))
    reply = outbound_email("acme", t0 + timedelta(seconds=5))
    # Same client, same key, so the same partition: poison between valid events.
    invalid = encode(inbound).replace(b'"direction":"inbound"', b'"direction":"sideways"')
    assert invalid != encode(inbound)
    records: list[tuple[bytes | None, bytes | None]] = [
        (b"acme", encode(policy_event("acme", t0))),
        (b"acme", UNDECODABLE),
        (b"acme", invalid),
        (b"acme", encode(inbound)),
        (b"acme", encode(reply)),
    ]
    await asyncio.to_thread(env.produce, env.topics.interactions, records)

    app, stats = env.build(env.new_app_id())
    await app.start()
    try:
        await facts.wait_for(lambda _: any(f.kind is FactKind.FULFILLED for f in facts.facts()))
        await dlq.wait_for(lambda recs: len(recs) >= 2)
        await wait_until(lambda: stats.events_in == 5)
    finally:
        await app.stop()

    assert stats.events_invalid == 2
    kinds = [f.kind for f in facts.facts()]
    assert FactKind.OBLIGATION_OPENED in kinds
    fulfilled = next(f for f in facts.facts() if f.kind is FactKind.FULFILLED)
    assert fulfilled.source_event_id == reply.event_id

    assert len(dlq.records) == 2
    by_value = {r.value: r for r in dlq.records}
    assert set(by_value) == {UNDECODABLE, invalid}  # original bytes, unchanged
    for rec in dlq.records:
        assert rec.key == b"acme"
        assert rec.headers[SOURCE] == b"worker"
        topic, partition, offset = rec.headers[ORIGIN].decode().rsplit("/", 2)
        assert topic == env.topics.interactions
        assert int(partition) >= 0
        assert int(offset) in (1, 2)
    assert by_value[UNDECODABLE].headers[REASON].startswith(b"<root>: Invalid JSON")
    assert b"direction" in by_value[invalid].headers[REASON]


async def test_a_mis_keyed_event_is_dead_lettered(
    processor_env: Callable[[], Env], collector: CollectorFactory
) -> None:
    env = processor_env()
    dlq = await collector(env.topics.dlq)
    event = inbound_email("acme", now() - timedelta(seconds=5))
    await asyncio.to_thread(env.produce, env.topics.interactions, [(b"globex", encode(event))])
    app, stats = env.build(env.new_app_id())
    await app.start()
    try:
        await dlq.wait_for(lambda recs: len(recs) >= 1)
    finally:
        await app.stop()
    assert stats.events_invalid == 1
    assert dlq.records[0].value == encode(event)
    assert dlq.records[0].key == b"globex"
    assert dlq.records[0].headers[REASON].startswith(b"<key>:")
