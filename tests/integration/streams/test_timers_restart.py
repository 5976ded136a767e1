"""A deadline that passes while no worker runs fires at once after a restart (index rebuilt)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest

from schemas.facts import FactKind
from tests.builders import inbound_email, policy_event

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


async def test_breach_fires_at_once_after_a_restart_past_the_deadline(
    processor_env: Callable[[], Env], collector: CollectorFactory
) -> None:
    from kafka import KafkaAdminClient

    env = processor_env()
    facts = await collector(env.topics.facts)
    app_id = env.new_app_id()
    app, stats = env.build(app_id)
    await app.start()
    try:
        await env.send_events([policy_event("acme", now() - timedelta(seconds=70))])
        await wait_until(lambda: stats.events_in >= 1)
        opened_at = now() - timedelta(seconds=45)  # deadline in 15 s
        await env.send_events([inbound_email("acme", opened_at)])
        await facts.wait_for(
            lambda _: any(f.kind is FactKind.OBLIGATION_OPENED for f in facts.facts())
        )
        # Let the changelog write and the offset commit happen before stopping.
        await asyncio.sleep(3.5)
    finally:
        await app.stop()
    deadline = opened_at + timedelta(minutes=1)
    assert now() < deadline, "the first worker must stop before the deadline"
    assert stats.open_obligations == 1

    # Faust declared its changelog topic itself (broker auto-creation is off).
    admin = KafkaAdminClient(bootstrap_servers=env.kafka.bootstrap)
    try:
        assert f"{app_id}-sla-state-changelog" in admin.list_topics()
    finally:
        admin.close()

    await asyncio.sleep(max(0.0, (deadline - now()).total_seconds()) + 2.0)
    assert not any(f.kind is FactKind.BREACHED for f in facts.facts())

    app2, stats2 = env.build(app_id)  # same app id, same RocksDB datadir
    started = now()
    await app2.start()
    try:
        await facts.wait_for(
            lambda _: any(f.kind is FactKind.BREACHED for f in facts.facts()), within=45
        )
    finally:
        await app2.stop()
    record = next(r for r in facts.records if r.value and b'"breached"' in r.value)
    print(
        f"breach read {(record.received_at - started).total_seconds():.2f} s after the restart; "
        f"stats2={stats2}"
    )
    breaches = [f for f in facts.facts() if f.kind is FactKind.BREACHED]
    assert len(breaches) == 1
    assert breaches[0].at == deadline  # the deadline instant, not the restart instant
    opened = [f for f in facts.facts() if f.kind is FactKind.OBLIGATION_OPENED]
    assert len(opened) == 1  # nothing re-emitted by the restart
    # The breach came from the rebuilt index (a tick), not from re-reading the inbound event.
    assert stats2.index_rebuilds >= 1
    assert stats2.ticks_sent >= 1
    assert stats2.events_in == 0
