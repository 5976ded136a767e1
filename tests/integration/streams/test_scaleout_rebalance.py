"""Two workers share the partitions; stopping one hands its clients (and timers) to the other."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest

from engine.core import Engine
from engine.replay import replay
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

pytestmark = [pytest.mark.integration, pytest.mark.slow]
_ = (collector, processor_env)  # fixtures used by name

CLIENTS = [f"client-{i}" for i in range(8)]


async def test_stopping_one_of_two_workers_loses_no_fact(
    processor_env: Callable[[], Env], collector: CollectorFactory
) -> None:
    env = processor_env()
    facts = await collector(env.topics.facts)
    app_id = env.new_app_id()
    app_a, stats_a = env.build(app_id, datadir=env.datadir / "a")
    app_b, stats_b = env.build(app_id, datadir=env.datadir / "b")
    t0 = now()
    policies = [policy_event(c, t0 - timedelta(seconds=90)) for c in CLIENTS]
    await app_a.start()
    await app_b.start()
    stopped_b = False
    try:
        await env.send_events(policies)
        # Both workers hold partitions and have processed their clients' policy events.
        await wait_until(lambda: stats_a.events_in + stats_b.events_in >= len(CLIENTS), 90)
        assert stats_a.events_in > 0
        assert stats_b.events_in > 0
        opened = now() - timedelta(seconds=40)  # deadlines ~20 s ahead
        events = [inbound_email(c, opened) for c in CLIENTS]
        await env.send_events(events)
        await facts.wait_for(
            lambda _: (
                sum(f.kind is FactKind.OBLIGATION_OPENED for f in facts.facts()) >= len(CLIENTS)
            )
        )
        await asyncio.sleep(3.0)  # changelog writes and offset commits
        await app_b.stop()
        stopped_b = True
        # Whatever B held is now A's: half the clients are answered (A must have B's state to
        # fulfil them), the other half breach (A's rebuilt index must fire B's timers).
        # Replies are dated 1 s ahead of the clock: live data, not late beyond the lateness.
        replies = [outbound_email(c, now() + timedelta(seconds=1)) for c in CLIENTS[::2]]
        await env.send_events(replies)
        events += replies
        deadline = opened + timedelta(minutes=1)
        assert now() < deadline - timedelta(seconds=2), "B must stop well before the deadlines"
        breaches = len(CLIENTS[1::2])
        await facts.wait_for(
            lambda _: sum(f.kind is FactKind.BREACHED for f in facts.facts()) >= breaches, 60
        )
        await facts.wait_for(
            lambda _: sum(f.kind is FactKind.FULFILLED for f in facts.facts()) >= len(CLIENTS[::2])
        )
        await asyncio.sleep(1.0)
    finally:
        if not stopped_b:
            await app_b.stop()
        await app_a.stop()

    # The one-worker truth: the same log replayed through the engine, past every deadline.
    engine = Engine(allowed_lateness=timedelta(seconds=env.settings.worker.allowed_lateness_s))
    expected = list(
        replay([*policies, *events], engine, watermark_end=deadline + timedelta(seconds=2))
    )
    assert sum(f.kind is FactKind.BREACHED for f in expected) == len(CLIENTS[1::2])
    assert sum(f.kind is FactKind.FULFILLED for f in expected) == len(CLIENTS[::2])
    got = facts.facts()
    assert {f.fact_id for f in got} == {f.fact_id for f in expected}
    duplicates = len(got) - len({f.fact_id for f in got})
    print(
        f"facts: {len(got)} read, {len(expected)} expected, {duplicates} duplicates; "
        f"A={stats_a} B={stats_b}"
    )
    for fact in got:
        if fact.kind is FactKind.BREACHED:
            assert fact.at == deadline
    assert stats_a.index_rebuilds >= 2  # once at start, once after taking over B's partitions
