"""The worker's reading state as the dashboard reads it from a real worker metrics registry."""

from __future__ import annotations

import pytest

from dashboard.progress import from_registry
from shinrai.metrics import WorkerMetrics
from streams.step import ProcessorStats

pytestmark = pytest.mark.unit


def test_progress_reads_catching_up_partitions_and_consumer_lag() -> None:
    metrics = WorkerMetrics()
    read = from_registry(metrics.registry)
    assert read() is None  # no processor in this process: nothing claimed
    stats = ProcessorStats()
    metrics.watch_processor(stats)
    metrics.consumer_lag.labels("g", "facts", "0").set(40)
    metrics.consumer_lag.labels("g", "facts", "1").set(2)
    live = read()
    assert live is not None
    assert not live.catching_up
    assert live.records_behind == 42
    stats.partitions_catching_up = 2
    behind = read()
    assert behind is not None
    assert behind.catching_up
    assert behind.partitions_catching_up == 2
