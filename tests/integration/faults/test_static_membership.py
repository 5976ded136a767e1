"""``worker.group_instance_id``: the processor and both sink runners join as static members.

With static membership (KIP-345) a worker restarted within ``session_timeout_s`` gets its
partitions back without a rebalance of the others (deploy/README.md). Real broker: the groups'
members, as the broker describes them, carry the configured instance ids.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shinrai.jobs.worker import build_worker
from tests.integration.pipeline.scenario import Pipeline

pytestmark = pytest.mark.integration


def _instance_ids(bootstrap: str, group: str) -> list[Any]:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        described: dict[str, Any] = admin.describe_groups([group])[group]
    finally:
        admin.close()
    return [member["group_instance_id"] for member in described["members"]]


async def test_processor_and_sink_runners_join_as_static_members(pipeline: Pipeline) -> None:
    p = pipeline
    worker_settings = p.settings.worker.model_copy(update={"group_instance_id": "worker-a"})
    p.settings = p.settings.model_copy(update={"worker": worker_settings})
    app = worker_settings.app_id
    worker = build_worker(p.settings)
    await worker.start()
    try:
        wanted = {
            app: "worker-a",
            f"{app}-sink-clickhouse": "worker-a-sink-clickhouse",
            f"{app}-sink-alerts": "worker-a-sink-alerts",
        }
        got: dict[str, list[Any]] = {}
        for _ in range(60):
            got = {g: await asyncio.to_thread(_instance_ids, p.settings.kafka.bootstrap, g)
                   for g in wanted}  # fmt: skip
            if all(got[g] == [i] for g, i in wanted.items()):
                break
            await asyncio.sleep(0.5)
        assert got == {g: [i] for g, i in wanted.items()}
    finally:
        await worker.stop()
