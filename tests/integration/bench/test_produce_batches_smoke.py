"""Smoke test of ``bench.produce_batches``: both runs produce the whole file through the real
command and broker; only the records differ (speed is not asserted: it lives in bench/)."""

from __future__ import annotations

import pytest

from bench.produce_batches import measure
from shinrai.settings import KafkaSettings

pytestmark = pytest.mark.integration


def test_single_and_batch_runs_produce_every_event(kafka_bootstrap: str) -> None:
    result = measure(KafkaSettings(bootstrap=kafka_bootstrap), 2_000, [1, 50])
    single, batched = result["runs"]
    assert single["produced"] == batched["produced"] == result["events"] > 0
    assert single["records"] == result["events"]
    # Six partitions: at most one partly filled batch each beyond the full ones.
    assert batched["records"] <= result["events"] // 50 + 6
    assert all(run["events_per_s"] > 0 and run["cpu_s"] > 0 for run in (single, batched))
