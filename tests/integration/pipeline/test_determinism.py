"""The same event log through ``engine.replay`` and through the live pipeline: the same facts.

Event-caused facts must be identical in every field; timer facts (warnings, breaches) must have
the same id, kind, obligation and exact instant ``at`` — the live worker fires them from the
wall clock, the replay from event time, and neither may show. The live facts are read from the
facts topic (every field, as emitted) and their ids from ClickHouse (what the sink kept).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from schemas.events import CallOutcome, Channel, Direction, Flag, Kind
from schemas.facts import Fact, FactKind
from tests.builders import inbound_email, interaction, outbound_email, phone_call, policy_event

from .scenario import (
    Pipeline,
    expected_facts,
    fact_signature,
    facts_query,
    now,
    read_topic,
    running_worker,
    wait_until,
)

pytestmark = pytest.mark.integration


async def test_live_pipeline_and_replay_give_identical_facts(pipeline: Pipeline) -> None:
    p = pipeline
    run = uuid.uuid4().hex[:6]
    late, reply, callback, meeting, quiet, waived, picked, dup = (
        f"{name}-{run}"
        for name in ("late", "reply", "callback", "meeting", "quiet", "waived", "picked", "dup")
    )
    clients = (late, reply, callback, meeting, quiet, waived, picked, dup)
    async with running_worker(p.settings) as worker:
        assert worker.stats is not None
        stats = worker.stats
        start = now()
        await p.send(*(policy_event(c, start - timedelta(seconds=120)) for c in clients))
        await wait_until(lambda: stats.events_in >= len(clients), 60, "the policy events")

        opened = now() - timedelta(seconds=58)
        deadline = opened + timedelta(minutes=1)
        t = now()
        first_mail = inbound_email(dup, t)
        await p.send(
            inbound_email(late, opened),
            inbound_email(reply, t),
            phone_call(callback, t, Direction.INBOUND, CallOutcome.ABANDONED, wait=40),
            inbound_email(meeting, t, thread="a"),
            inbound_email(meeting, t, thread="b"),
            interaction(t, client=quiet, direction=Direction.INBOUND, flags={Flag.AUTO_REPLY}),
            interaction(t, client=quiet, direction=Direction.INTERNAL),
            inbound_email(waived, t),
            phone_call(picked, t, Direction.INBOUND, CallOutcome.ANSWERED, wait=4),
            first_mail,
        )  # fmt: skip
        await asyncio.sleep(0.6)
        t = now()
        await p.send(
            outbound_email(reply, t),
            phone_call(callback, t, Direction.OUTBOUND, CallOutcome.ANSWERED, duration=15),
            interaction(t, client=meeting, channel=Channel.MEETING, kind=Kind.MEETING,
                        direction=Direction.OUTBOUND, thread=None,
                        flags={Flag.HELD, Flag.CLIENT_ATTENDEE}),
            interaction(t, client=waived, kind=Kind.NO_REPLY_NEEDED, direction=Direction.INTERNAL),
            first_mail,  # the same event again: changes nothing
            outbound_email(dup, t),
        )  # fmt: skip

        until = deadline + timedelta(seconds=1)
        expected = expected_facts(p.produced, p.settings, until=until)
        await wait_until(lambda: now() > until + timedelta(seconds=1), 10, "the breach instant")
        await wait_until(
            lambda: stats.facts_out >= len(expected), 15, f"{len(expected)} facts emitted"
        )
        await asyncio.sleep(1.0)  # anything extra would show up now
        assert worker.sink is not None
        database = worker.sink.database

        def stored() -> list[str]:
            assert worker.sink is not None
            # Written by the time the runner caught up; it flushes every 0.2 s.
            return [str(r[0]) for r in worker.sink.client.query(facts_query(database)).result_rows]

        for _ in range(50):
            ids = await worker.in_sink_thread(stored)
            if len(ids) >= len(expected):
                break
            await asyncio.sleep(0.1)

    records = await asyncio.to_thread(
        read_topic, p.settings.kafka.bootstrap, p.topic("sla-facts.v1")
    )
    live = [Fact.model_validate_json(v) for _, v in records if v]

    assert len(live) == len({f.fact_id for f in live})  # no crash, so no repeat either
    assert sorted(map(fact_signature, live)) == sorted(map(fact_signature, expected))
    assert sorted(ids) == sorted(f.fact_id for f in expected)

    # The scenario covers what it claims to (a replay that produced nothing would pass above).
    kinds = {f.kind for f in expected}
    assert {FactKind.BREACHED, FactKind.WARNING, FactKind.WAIVED, FactKind.FULFILLED,
            FactKind.SPEED_OF_ANSWER} <= kinds  # fmt: skip
    assert not any(f.client_id == quiet for f in expected)  # auto-reply and internal: nothing
    fulfilled = {f.client_id: f for f in expected if f.kind is FactKind.FULFILLED}
    assert {reply, callback, meeting, dup} <= set(fulfilled)
    assert (
        sum(1 for f in expected if f.kind is FactKind.OBLIGATION_OPENED and f.client_id == dup) == 1
    )
