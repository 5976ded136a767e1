"""History imported into a running worker, in the README's order: worker, directory, history.

The directory's first entry takes effect "from the beginning", so the history that follows is
processed under the directory's policy, in event time, as a replay would: every answered
obligation met, nothing breached then retracted, nothing dropped as too old. The history is
produced one record at a time (the partition looks live between records: the hardest case),
then once more for a second client with a bulk producer. An interaction older than what a live
client's state can correct is dead-lettered with the reason, never dropped silently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest

from schemas.deadletter import REASON
from schemas.directory import Client, ClientDirectory
from schemas.directory_records import directory_records
from schemas.events import InteractionEvent
from schemas.facts import Fact, FactKind, Outcome
from tests.builders import ALWAYS_OPEN, ONE_MINUTE, inbound_email, outbound_email

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

THREADS = 40
CLIENTS = ("acme", "globex")


def directory() -> ClientDirectory:
    return ClientDirectory(
        clients=tuple(
            Client(
                client_id=name,
                name=name.title(),
                domains=(f"{name}.example",),
                owner="owner@us.example",
                policy_id=ONE_MINUTE.policy_id,
                calendar_id=ALWAYS_OPEN.calendar_id,
            )
            for name in CLIENTS
        ),
        policies=(ONE_MINUTE,),
        calendars=(ALWAYS_OPEN,),
    )


def history(client: str, days: int) -> list[InteractionEvent]:
    """``days`` of history, every inbound answered 30 s later (1-minute SLA: all met)."""
    start = now() - timedelta(days=days)
    step = timedelta(days=days) / (THREADS + 1)
    events = []
    for i in range(THREADS):
        at = start + i * step
        events.append(inbound_email(client, at, thread=f"t{i}"))
        events.append(outbound_email(client, at + timedelta(seconds=30), thread=f"t{i}"))
    return events


async def test_history_after_the_directory_is_processed_in_event_time(
    processor_env: Callable[[], Env], collector: CollectorFactory
) -> None:
    env = processor_env()
    facts = await collector(env.topics.facts)
    dlq = await collector(env.topics.dlq)
    app, stats = env.build(env.new_app_id())
    await app.start()
    try:
        records = directory_records(directory())
        await asyncio.to_thread(env.produce, env.topics.directory, list(records))
        await wait_until(lambda: stats.policy_changes_out >= len(CLIENTS))
        await wait_until(lambda: stats.events_in >= len(CLIENTS))  # announcements processed

        trickled = history("acme", days=10)
        overdue_at = now() - timedelta(minutes=5)
        trickled.append(inbound_email("acme", overdue_at, thread="late"))
        await env.send_events(trickled)  # one record at a time, each acknowledged
        bulk = history("globex", days=12)
        await asyncio.to_thread(env.produce_bulk, env.topics.interactions, bulk)

        # A live client's state cannot correct an interaction older than its duplicate window.
        too_old = inbound_email("globex", now() - timedelta(days=30), thread="ancient")
        await wait_until(lambda: stats.events_in >= len(CLIENTS) + len(trickled) + len(bulk))
        await wait_until(lambda: _count(facts.facts(), FactKind.BREACHED) >= 1)
        await env.send_events([too_old])
        await dlq.wait_for(lambda recs: len(recs) >= 1)
        await facts.wait_for(lambda _: _count(facts.facts(), FactKind.FULFILLED) >= 2 * THREADS)
    finally:
        await app.stop()

    got = facts.facts()
    assert _count(got, FactKind.OBLIGATION_OPENED) == 2 * THREADS + 1
    fulfilled = [f for f in got if f.kind is FactKind.FULFILLED]
    assert len(fulfilled) == 2 * THREADS
    assert {f.outcome for f in fulfilled} == {Outcome.MET}
    assert {f.policy_id for f in fulfilled} == {ONE_MINUTE.policy_id}  # the directory's policy
    assert not [f for f in got if f.kind is FactKind.RETRACTED]
    breaches = [f for f in got if f.kind is FactKind.BREACHED]
    assert [(b.client_id, b.deadline) for b in breaches] == [
        ("acme", overdue_at + timedelta(minutes=1))
    ]
    (letter,) = dlq.records
    assert letter.key == b"globex"
    assert b"duplicate window" in letter.headers[REASON]
    assert stats.events_invalid == 1


def _count(facts: list[Fact], kind: FactKind) -> int:
    return sum(1 for f in facts if f.kind is kind)
