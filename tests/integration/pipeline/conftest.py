"""Fixtures for the end-to-end pipeline tests: private topics, a webhook receiver, settings.

Real parts only: the live broker (topics with a random suffix, deleted afterwards), embedded
ClickHouse (the process's one chdb directory, ``chdb_dir`` of tests/integration/conftest.py,
a random database per test) and a loopback
webhook receiver that verifies every signature (``tests.integration.alerts.harness.Receiver``).
Fixtures return factories.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from shinrai.settings import (
    AlertSettings,
    ClickHouseSettings,
    KafkaSettings,
    Settings,
    WorkerSettings,
)
from tests.integration.alerts.harness import SECRET, Receiver, always_ok

from .scenario import PARTITIONS, Pipeline


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver on 127.0.0.1 that acknowledges everything (and records it)."""
    rec = Receiver(always_ok, SECRET)
    await rec.start()
    yield rec
    await rec.stop()


@pytest.fixture
def pipeline(
    kafka_settings: KafkaSettings, chdb_dir: Path, tmp_path: Path, receiver: Receiver
) -> Iterator[Pipeline]:
    """Private topics + settings for one worker (in-process or as a subprocess)."""
    suffix = f"-{uuid.uuid4().hex[:10]}"
    app_id = f"test-pipe-{uuid.uuid4().hex[:10]}"
    kafka = kafka_settings.model_copy(update={"topic_partitions": PARTITIONS})
    settings = Settings(
        kafka=kafka,
        clickhouse=ClickHouseSettings(
            url=f"chdb://{chdb_dir}",
            database=f"t_{uuid.uuid4().hex[:12]}",
            batch_age_s=0.2,
        ),
        alerts=AlertSettings(
            webhook_url=f"{receiver.url}/hook", signing_secret=SecretStr(SECRET), max_age_s=600
        ),
        worker=WorkerSettings(
            app_id=app_id,
            data_dir=tmp_path / "worker",
            store="rocksdb://",
            topic_suffix=suffix,
            tick_interval_s=0.1,
            allowed_lateness_s=0.5,
            metrics_port=0,
            session_timeout_s=6,
            sink_commit_interval_s=0.2,
            shutdown_timeout_s=10,
            # The test clients are small (a few events each): merge after more than one changed
            # item, so their states go through both keys of the two-generation store (core +
            # old generation) here, merges and young-only writes mixed.
            state_merge_items=1,
        ),
    )
    env = Pipeline(settings=settings, receiver=receiver, tmp_path=tmp_path)
    yield env
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        doomed = [n for n in admin.list_topics() if n.endswith(suffix) or n.startswith(app_id)]
        if doomed:
            admin.delete_topics(doomed)
    except Exception:
        pass  # best effort: a leftover private topic harms no other test
    finally:
        admin.close()
