"""WorkerMetrics: processor counters read at scrape time, runner metrics, private registries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import generate_latest

from shinrai.metrics import WorkerMetrics
from streams.processor import ProcessorStats

pytestmark = pytest.mark.unit


def test_processor_stats_are_exported_live() -> None:
    metrics = WorkerMetrics()
    assert metrics.value("shinrai_events_in_total") is None  # nothing watched yet
    stats = ProcessorStats()
    metrics.watch_processor(stats)
    stats.events_in = 7
    stats.events_invalid = 2
    stats.set_open("acme", 3)
    stats.last_event_at = datetime(2026, 1, 1, tzinfo=UTC)
    stats.partitions_catching_up = 2
    assert metrics.value("shinrai_events_in_total") == 7
    assert metrics.value("shinrai_partitions_catching_up") == 2
    assert metrics.value("shinrai_events_invalid_total") == 2
    assert metrics.value("shinrai_open_obligations") == 3
    assert metrics.value("shinrai_last_event_timestamp_seconds") == 1767225600.0
    stats.events_in = 9  # read at scrape time, not copied once
    assert metrics.value("shinrai_events_in_total") == 9
    assert metrics.value("shinrai_dead_letters_total", {"cause": "too_old"}) is None
    stats.dead_letters["too_old"] += 3
    stats.dead_letters["future"] += 1
    stats.clients_held = 4
    stats.redelivered = 2
    assert metrics.value("shinrai_redelivered_total") == 2
    stats.batches_in = 5
    assert metrics.value("shinrai_batch_records_in_total") == 5
    assert metrics.value("shinrai_dead_letters_total", {"cause": "too_old"}) == 3
    assert metrics.value("shinrai_dead_letters_total", {"cause": "future"}) == 1
    assert metrics.value("shinrai_clients_held") == 4


def test_runner_metrics_have_their_labels() -> None:
    metrics = WorkerMetrics()
    metrics.consumer_lag.labels("g", "sla-facts.v1", "2").set(5)
    metrics.sink_rows.labels("sla_facts").inc(10)
    metrics.alert_deliveries.labels("delivered").inc()
    metrics.flush_seconds.observe(0.02)
    lag = {"group": "g", "topic": "sla-facts.v1", "partition": "2"}
    assert metrics.value("shinrai_consumer_lag", lag) == 5
    assert metrics.value("shinrai_sink_rows_written_total", {"table": "sla_facts"}) == 10
    assert metrics.value("shinrai_alert_deliveries_total", {"outcome": "delivered"}) == 1
    assert metrics.value("shinrai_sink_flush_seconds_count") == 1
    text = generate_latest(metrics.registry).decode()
    assert 'shinrai_consumer_lag{group="g",partition="2",topic="sla-facts.v1"} 5.0' in text


def test_two_workers_in_one_process_do_not_share_metrics() -> None:
    one, two = WorkerMetrics(), WorkerMetrics()
    one.sink_rows.labels("interactions").inc(4)
    assert two.value("shinrai_sink_rows_written_total", {"table": "interactions"}) is None
