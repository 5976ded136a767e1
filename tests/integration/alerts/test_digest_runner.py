"""The alert runner with per-owner digests, on a real broker and a real receiver on 127.0.0.1:
warnings wait for their digest (their offsets stay uncommitted until it is delivered), the breach
pages at once, and once the digest is delivered the group has committed everything."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from schemas.alerts import AlertLevel
from shinrai.metrics import WorkerMetrics
from shinrai.settings import AlertSettings, KafkaSettings
from sinks.alerts.paging import PagingRules
from sinks.alerts.records import InMemoryDeliveryLog
from sinks.alerts.routing import RoutingConfig, WebhookTarget
from sinks.alerts.runner import AlertRunner
from sinks.alerts.samples import sample_alert, sample_directory
from sinks.alerts.store import InMemoryDeliveredStore
from tests.integration.pipeline.scenario import group_caught_up

from .harness import SECRET, Receiver

pytestmark = pytest.mark.integration

INTERVAL_S = 2.0


async def _until(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(0.2)


async def test_warnings_page_as_one_digest_and_commit_only_once_it_is_delivered(
    kafka_settings: KafkaSettings,
    topic_factory: Callable[..., str],
    make_receiver: Callable[..., Awaitable[Receiver]],
) -> None:
    from kafka import KafkaProducer

    receiver = await make_receiver()
    topic = topic_factory("alerts", partitions=1)
    now = datetime.now(UTC).replace(microsecond=0)
    alerts = [
        sample_alert(f"o{i}", level=AlertLevel.WARNING, at=now + timedelta(milliseconds=i))
        for i in range(3)
    ] + [sample_alert("o9", level=AlertLevel.BREACH, at=now)]
    producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap)
    try:
        for alert in alerts:
            producer.send(topic, key=b"acme", value=alert.model_dump_json().encode())
        producer.flush()
    finally:
        producer.close()

    group = f"digest-{uuid.uuid4().hex[:8]}"
    runner = AlertRunner(
        kafka_settings,
        AlertSettings(signing_secret=SecretStr(SECRET), max_age_s=3600),
        topic=topic,
        group_id=group,
        routing=RoutingConfig(
            default=WebhookTarget(url=receiver.url + "/hook"),
            paging=PagingRules(digest_interval_s=INTERVAL_S),
        ),
        delivery_log=InMemoryDeliveryLog(),
        store=InMemoryDeliveredStore(),
        metrics=WorkerMetrics(),
        directory=sample_directory(),
        commit_interval_s=0.2,
    )
    await runner.start()
    try:
        await _until(lambda: len(receiver.requests) >= 1, 30, "the breach")
        assert json.loads(receiver.requests[0].body)["level"] == "breach"
        # The warnings wait in the digest: nothing past the first warning is committed.
        assert not await asyncio.to_thread(
            group_caught_up, kafka_settings.bootstrap, group, [topic]
        )
        await _until(lambda: len(receiver.requests) >= 2, 30, "the digest")
        digest = json.loads(receiver.requests[1].body)
        assert digest["level"] == "warning"
        assert digest["summary"].startswith("3 warnings for owner@example.com between ")
        await _until(
            lambda: group_caught_up(kafka_settings.bootstrap, group, [topic]),
            30,
            "the commit of every alert",
        )
        await asyncio.sleep(INTERVAL_S + 1)
        assert len(receiver.requests) == 2  # one page for the breach, one for the warnings
    finally:
        await runner.stop()
