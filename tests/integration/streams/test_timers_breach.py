"""Exact-time timers: warnings and the breach fire with no further events, on time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from schemas.alerts import Alert, AlertLevel
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

BREACH_MARGIN_S = 1.5


async def test_breach_fires_within_the_margin_with_no_further_events(
    processor_env: Callable[[], Env], collector: CollectorFactory
) -> None:
    env = processor_env()
    facts = await collector(env.topics.facts)
    alerts = await collector(env.topics.alerts)
    app, stats = env.build(env.new_app_id())
    await app.start()
    try:
        # The policy event first: once it is processed the app is assigned and running, so
        # the timing of what follows does not include the start-up.
        await env.send_events([policy_event("acme", now() - timedelta(seconds=70))])
        await wait_until(lambda: stats.events_in >= 1)
        opened_at = now() - timedelta(seconds=50)  # 1-minute SLA: 90% at +4 s, deadline +10 s
        await env.send_events([inbound_email("acme", opened_at)])

        await facts.wait_for(
            lambda _: any(f.kind is FactKind.BREACHED for f in facts.facts()), within=40
        )
        await alerts.wait_for(
            lambda recs: any(b'"breach"' in (r.value or b"") for r in recs), within=10
        )
    finally:
        await app.stop()

    by_kind = {f.kind: f for f in facts.facts()}
    assert FactKind.OBLIGATION_OPENED in by_kind
    warnings = sorted(
        f.warning_fraction or 0.0 for f in facts.facts() if f.kind is FactKind.WARNING
    )
    assert warnings == [0.5, 0.75, 0.9]
    breach = by_kind[FactKind.BREACHED]
    deadline = opened_at + timedelta(minutes=1)
    assert breach.at == deadline
    assert breach.deadline == deadline
    record = next(r for r in facts.records if r.value and b'"breached"' in r.value)
    delay = (record.received_at - deadline).total_seconds()
    print(f"breach fact read {delay:.3f} s after its instant")
    # Not before the deadline (plus the allowed lateness of 0.5 s), and within the margin.
    assert 0.5 <= delay <= BREACH_MARGIN_S, delay
    warn90 = next(f for f in facts.facts() if f.warning_fraction == 0.9)
    rec90 = next(r for r in facts.records if r.value and warn90.fact_id.encode() in r.value)
    delay90 = (rec90.received_at - warn90.at).total_seconds()
    print(f"90% warning read {delay90:.3f} s after its instant")
    assert 0.5 <= delay90 <= BREACH_MARGIN_S, delay90

    alert_objs = [Alert.model_validate_json(r.value) for r in alerts.records if r.value]
    breach_alerts = [a for a in alert_objs if a.level is AlertLevel.BREACH]
    assert len(breach_alerts) == 1
    assert breach_alerts[0].fact_id == breach.fact_id
    assert all(r.key == b"acme" for r in facts.records)
    assert stats.ticks_sent >= 1
    assert stats.ticks_in >= 1
    assert stats.events_invalid == 0
