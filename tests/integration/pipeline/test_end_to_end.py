"""End to end in one process: events → Faust processor → facts in ClickHouse, breach → webhook.

The expected facts are not written down by hand: they are the replay of the very events the
test produced (``engine.replay``, settled just after the deadline), so the test checks that the
live pipeline (Kafka, Faust, timers, sink runner, ClickHouse) delivers the engine's truth.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta

import httpx
import pytest

from schemas.alerts import AlertLevel
from schemas.events import CallOutcome, Direction
from schemas.facts import FactKind
from shinrai.jobs.worker import build_worker
from tests.builders import inbound_email, outbound_email, phone_call, policy_event

from .scenario import (
    Pipeline,
    expected_alerts,
    expected_facts,
    facts_query,
    now,
    utc,
    wait_until,
    wall_time_of,
)

pytestmark = pytest.mark.integration

ALERT_MARGIN = timedelta(seconds=2)


async def test_scenario_facts_land_in_clickhouse_and_the_breach_pages_on_time(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    worker = build_worker(p.settings)
    await worker.start()
    assert worker.stats is not None
    assert worker.sink is not None
    stats, database = worker.stats, worker.sink.database
    run = uuid.uuid4().hex[:6]
    late, prompt, caller = f"acme-{run}", f"globex-{run}", f"initech-{run}"
    try:
        start = now()
        await p.send(
            *(policy_event(c, start - timedelta(seconds=120)) for c in (late, prompt, caller))
        )
        # Once the policies are processed the app is assigned and live: from here on the
        # timing the test measures excludes the start-up.
        await wait_until(lambda: stats.events_in >= 3, 60, "the policy events to be processed")

        opened = now() - timedelta(seconds=55)
        deadline = opened + timedelta(minutes=1)
        await p.send(inbound_email(late, opened))
        await p.send(inbound_email(prompt, now()))
        await p.send(phone_call(caller, now(), Direction.INBOUND, CallOutcome.MISSED, wait=25))
        await asyncio.sleep(0.8)
        await p.send(outbound_email(prompt, now()))
        await p.send(
            phone_call(caller, now(), Direction.OUTBOUND, CallOutcome.ANSWERED, duration=90)
        )

        expected = expected_facts(p.produced, p.settings, until=deadline + timedelta(seconds=1))
        breaches = [a for a in expected_alerts(expected) if a.level is AlertLevel.BREACH]
        assert len(breaches) == 1
        assert breaches[0].client_id == late
        key = p.delivery_key(breaches[0])

        # No further events: the breach must page by itself, within the margin of the deadline.
        wait_s = (deadline - now()).total_seconds() + 15
        await wait_until(lambda: p.receiver.acked()[key] >= 1, wait_s, "the breach alert")
        first = next(r for r in p.receiver.requests if r.key == key)
        arrived = wall_time_of(first.arrived)
        assert deadline <= arrived <= deadline + ALERT_MARGIN, arrived - deadline
        assert first.signature_error is None

        def rows() -> list[tuple[object, ...]]:
            assert worker.sink is not None
            result = worker.sink.client.query(facts_query(database))
            return [tuple(r) for r in result.result_rows]

        async def current() -> list[tuple[object, ...]]:
            return await worker.in_sink_thread(rows)

        got: list[tuple[object, ...]] = []
        for _ in range(100):
            got = await current()
            if len(got) >= len(expected):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # anything extra would show up now
        got = await current()
        interactions = await worker.in_sink_thread(
            lambda: worker.sink.client.query(  # type: ignore[union-attr]
                f"SELECT count() FROM `{database}`.interactions FINAL"
            ).result_rows[0][0]
        )
        port = worker.metrics_port
        assert port is not None
        async with httpx.AsyncClient() as http:
            scraped = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    finally:
        await worker.stop()

    kinds = Counter(FactKind(f.kind).value for f in expected)
    # The scenario as a reader would count it (a guard against a replay that says nothing).
    assert kinds["obligation_opened"] == 3  # late mail, prompt mail, callback
    assert kinds["breached"] == 1
    assert kinds["warning"] == 3  # 50/75/90 % of the late mail only
    assert kinds["fulfilled"] == 2
    assert kinds["speed_of_answer"] == 1

    assert sorted((str(r[0]), str(r[1])) for r in got) == sorted(
        (f.fact_id, f.kind.value) for f in expected
    )
    by_id = {f.fact_id: f for f in expected}
    for fact_id, _kind, client_id, at, *_ in got:
        fact = by_id[str(fact_id)]
        assert client_id == fact.client_id
        assert utc(at) == fact.at, (fact.kind, at, fact.at)
    assert interactions == 5  # the InteractionEvents; policy changes are not interactions

    assert "shinrai_events_in_total 8.0" in scraped
    assert 'shinrai_alert_deliveries_total{outcome="delivered"}' in scraped
    assert "shinrai_sink_flush_seconds_count" in scraped
    assert 'shinrai_sink_rows_written_total{table="sla_facts"}' in scraped
