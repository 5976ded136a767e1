"""Issue 17.8: the webhook target answers 500, then 429 with Retry-After, then hangs, then
recovers; every alert is delivered exactly once and the run equals a replay of its events.

An in-process worker (Faust processor, both sink runners, embedded chdb) reads a seeded
history (``tests/integration/pipeline/oracle.py``); the loopback receiver's answers follow the
target's story, timed from its first request: ``500`` for ``PHASE_S``, then ``429`` with
``Retry-After: 1`` for ``PHASE_S``, then no answer at all (longer than the attempt timeout)
for ``PHASE_S``, then ``200``. Afterwards ClickHouse and the acknowledged alerts must equal the
oracle's replay: no alert lost, none acknowledged under two keys, none acknowledged twice.
"""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from schemas.topics import ALL_TOPICS
from shinrai.jobs.worker import build_worker
from shinrai.topic_admin import ensure_topics
from sinks.alerts.retry import DeliveryOptions
from tests.integration.alerts.harness import Action, Received, Respond, Stall
from tests.integration.pipeline.oracle import HISTORY_ENDS, as_raw, make_workload, produce
from tests.integration.pipeline.scenario import Pipeline, now
from tests.integration.pipeline.test_oracle import MAX_ALERT_AGE_S, _read_live

from .harness import assert_equal_to_replay, verdict

pytestmark = pytest.mark.integration

PHASE_S = 3.0
OPTIONS = DeliveryOptions(attempt_timeout_s=1.0, base_delay_s=0.2, max_delay_s=1.0)


class TargetStory:
    """500, then 429 + Retry-After, then hanging, then 200, by time since the first request."""

    def __init__(self) -> None:
        self.first: float | None = None

    @property
    def healthy_at(self) -> float | None:
        return None if self.first is None else self.first + 3 * PHASE_S

    def __call__(self, req: Received, _seen: int) -> Action:
        if self.first is None:
            self.first = req.arrived
        phase = int((req.arrived - self.first) // PHASE_S)
        if phase == 0:
            return Respond(500)
        if phase == 1:
            return Respond(429, {"Retry-After": "1"})
        if phase == 2:
            return Stall(OPTIONS.attempt_timeout_s + 2)
        return Respond(200)


async def test_webhook_500_then_429_then_hanging_every_alert_delivered_once(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    alerts = p.settings.alerts.model_copy(update={"max_age_s": MAX_ALERT_AGE_S})
    p.settings = p.settings.model_copy(update={"alerts": alerts})
    story = TargetStory()
    p.receiver.plan = story
    ensure_topics(p.settings.kafka, ALL_TOPICS, suffix=p.suffix)
    wl = make_workload(uuid.uuid4().hex[:6], now() - HISTORY_ENDS, seed=8, clients=12, threads=8)
    produce(p.settings.kafka.bootstrap, p.topic("interactions.v1"),
            as_raw(wl.policies) + as_raw(wl.history))  # fmt: skip

    worker = build_worker(p.settings, alert_options=OPTIONS)
    await worker.start()
    try:
        until, live = await _read_live(p, worker)
    finally:
        await worker.stop()

    oracle, v = verdict("webhook faults", p.settings, until, live, p.receiver.requests)
    assert_equal_to_replay("webhook 500, 429, hanging", oracle, v, min_alerts=20)
    assert v.alerts_redelivered == 0, "an alert was acknowledged twice"

    answers = Counter(r.status for r in p.receiver.requests)
    print(f"answers by status: {dict(answers)} (503: attempts the client gave up on)")
    assert answers[500] >= 1
    assert answers[429] >= 1
    stalled = [r for r in p.receiver.requests if r.status in (None, 503)]
    assert stalled, "no attempt met the hanging target"
    assert story.healthy_at is not None
    last_ack = max(r.arrived for r in p.receiver.requests if r.status == 200)
    print(f"every alert acknowledged {last_ack - story.healthy_at:.1f} s after the target healed")
    # Nothing acknowledged before the target healed: each was retried through the whole story.
    assert min(r.arrived for r in p.receiver.requests if r.status == 200) >= story.healthy_at
