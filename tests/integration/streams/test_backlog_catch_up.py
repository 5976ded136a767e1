"""A backlog (history published at once, or the log a stopped worker missed) is read in event
time: answered obligations are met, not breached then retracted, and nothing is dropped as too
old; once the partition is caught up the wall clock rules again (the overdue one breaches)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from schemas.facts import Fact, FactKind, Outcome
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

THREADS = 120
CLIENTS = ("acme", "globex")


@pytest.mark.parametrize("batch", [1, 25])
async def test_a_backlog_is_processed_in_event_time_then_the_clock_rules(
    processor_env: Callable[[], Env], collector: CollectorFactory, batch: int
) -> None:
    env = processor_env()
    # Small batches: the backlog spans many of them, so the partition is read "catching up";
    # with one event per batch the first batches hold nothing but the policy changes, which
    # carry no event time (advancing on "now" there turned the whole backlog late).
    worker = env.settings.worker.model_copy(update={"batch_max_events": batch})
    env.settings = env.settings.model_copy(update={"worker": worker})
    facts = await collector(env.topics.facts)

    # Ten days of history (older than the engine's 7-day duplicate window), every inbound
    # answered 30 s later under a 1-minute SLA, then one inbound 5 minutes ago, unanswered.
    start = now() - timedelta(days=10)
    step = timedelta(days=10) / (THREADS + 1)
    history = []
    for client in CLIENTS:
        history.append(policy_event(client, start - timedelta(minutes=1)))
    for i in range(THREADS):
        at = start + i * step
        for client in CLIENTS:
            history.append(inbound_email(client, at, thread=f"t{i}"))
        for client in CLIENTS:
            history.append(outbound_email(client, at + timedelta(seconds=30), thread=f"t{i}"))
    overdue_at = now() - timedelta(minutes=5)
    history.append(inbound_email("acme", overdue_at, thread="late"))
    await env.send_events(history)  # before the worker starts: all of it is a backlog

    app, stats = env.build(env.new_app_id())

    def breached() -> bool:
        return any(f.kind is FactKind.BREACHED for f in facts.facts())

    await app.start()
    try:
        await wait_until(lambda: stats.events_in >= len(history))
        await wait_until(breached)
        await facts.wait_for(lambda _: _count(facts.facts(), FactKind.FULFILLED) >= 2 * THREADS)
    finally:
        await app.stop()

    got = facts.facts()
    assert _count(got, FactKind.OBLIGATION_OPENED) == 2 * THREADS + 1
    assert _count(got, FactKind.FULFILLED) == 2 * THREADS
    assert {f.outcome for f in got if f.kind is FactKind.FULFILLED} == {Outcome.MET}
    assert not [f for f in got if f.kind is FactKind.RETRACTED]  # no breach needed taking back
    breaches = [f for f in got if f.kind is FactKind.BREACHED]
    assert [(b.client_id, b.deadline) for b in breaches] == [
        ("acme", overdue_at + timedelta(minutes=1))
    ]
    assert stats.events_invalid == 0
    assert stats.partitions_catching_up == 0  # caught up at the end


def _count(facts: list[Fact], kind: FactKind) -> int:
    return sum(1 for f in facts if f.kind is kind)
