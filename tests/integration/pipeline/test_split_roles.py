"""The processor and the sinks as two workers (``--no-processor`` / ``--no-*-sink``).

Two ``Worker`` objects in this process stand for the two processes an operator runs: one with
only the Faust SLA processor, one with only the sink runners. The split must change nothing a
user sees: the facts in ClickHouse are the replay of the produced events and the breach pages
through the sinks-only worker's alert runner.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from schemas.alerts import AlertLevel
from shinrai.jobs.worker import build_worker
from shinrai.settings import Settings
from tests.builders import inbound_email, outbound_email, policy_event

from .scenario import (
    Pipeline,
    expected_alerts,
    expected_facts,
    facts_query,
    now,
    wait_until,
)

pytestmark = pytest.mark.integration


def _role(pipeline: Pipeline, **flags: object) -> Settings:
    worker = pipeline.settings.worker.model_copy(update=flags)
    return pipeline.settings.model_copy(update={"worker": worker})


async def test_processor_only_and_sinks_only_workers_make_one_pipeline(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    processor = build_worker(
        _role(p, run_clickhouse_sink=False, run_alert_sink=False, metrics_port=None)
    )
    sinks = build_worker(_role(p, run_processor=False))
    await sinks.start()
    await processor.start()
    try:
        assert processor.sink is None
        assert processor.alert_runner is None
        assert sinks.app is None
        assert sinks.stats is None
        assert sinks.sink is not None
        stats = processor.stats
        assert stats is not None
        run = uuid.uuid4().hex[:6]
        late, prompt = f"acme-{run}", f"globex-{run}"
        start = now()
        await p.send(policy_event(late, start - timedelta(seconds=120)))
        await p.send(policy_event(prompt, start - timedelta(seconds=120)))
        await wait_until(lambda: stats.events_in >= 2, 60, "the policy events")
        opened = now() - timedelta(seconds=58)
        deadline = opened + timedelta(minutes=1)
        await p.send(inbound_email(late, opened))
        await p.send(inbound_email(prompt, now()))
        await asyncio.sleep(0.5)
        await p.send(outbound_email(prompt, now()))

        expected = expected_facts(p.produced, p.settings, until=deadline + timedelta(seconds=1))
        breaches = [a for a in expected_alerts(expected) if a.level is AlertLevel.BREACH]
        assert [b.client_id for b in breaches] == [late]
        key = p.delivery_key(breaches[0])
        wait_s = (deadline - now()).total_seconds() + 20
        await wait_until(lambda: p.receiver.acked()[key] >= 1, wait_s, "the breach alert")

        sink = sinks.sink
        assert sink is not None

        def rows() -> list[tuple[str, str]]:
            result = sink.client.query(facts_query(sink.database))
            return sorted((str(r[0]), str(r[1])) for r in result.result_rows)

        want = sorted((f.fact_id, f.kind.value) for f in expected)
        got: list[tuple[str, str]] = []
        for _ in range(100):
            got = await sinks.in_sink_thread(rows)
            if len(got) >= len(want):
                break
            await asyncio.sleep(0.1)
    finally:
        await processor.stop()
        await sinks.stop()
    assert got == want
    assert stats.facts_out == len(want)
