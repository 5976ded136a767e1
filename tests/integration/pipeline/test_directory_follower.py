"""The directory topic reaches the sinks: ClickHouse ``clients`` rows and alert routing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from schemas.directory import Client, ClientDirectory
from schemas.directory_records import directory_records
from shinrai.settings import ClickHouseSettings, KafkaSettings
from sinks.clickhouse.sink import ClickHouseSink
from sinks.directory_follower import DirectoryFollower

pytestmark = pytest.mark.integration


def _publish(kafka: KafkaSettings, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value).get(timeout=30)
    finally:
        producer.close()


async def _until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - polls state fed by another task
            await asyncio.sleep(0.1)


async def test_directory_changes_reach_clickhouse_and_listeners(
    kafka_settings: KafkaSettings, topic_factory: Callable[..., str], chdb_dir: Path
) -> None:
    topic = topic_factory("directory", partitions=1)
    acme = Client(client_id="acme", name="ACME", owner="ito@us.example", domains=("acme.jp",))
    globex = Client(client_id="globex", name="Globex", owner="sato@us.example")
    await asyncio.to_thread(
        _publish, kafka_settings, topic, directory_records(ClientDirectory(clients=(acme, globex)))
    )

    sink = ClickHouseSink(
        ClickHouseSettings(url=f"chdb://{chdb_dir}", database=f"dir_{uuid.uuid4().hex[:10]}")
    )
    sink.setup()
    written: list[tuple[str, int]] = []
    seen: list[ClientDirectory] = []

    async def write_client(client: Client, version: int) -> None:
        written.append((client.client_id, version))
        sink.upsert_clients([client], version)

    follower = DirectoryFollower(
        kafka_settings, topic, write_client=write_client, on_directory=seen.append
    )
    await follower.start()
    try:
        await _until(lambda: {c for c, _ in written} == {"acme", "globex"})
        # A new owner for acme: only acme is written again, at a higher version.
        moved = acme.model_copy(update={"owner": "kato@us.example"})
        await asyncio.to_thread(
            _publish, kafka_settings, topic, [(b"acme", moved.model_dump_json().encode())]
        )
        await _until(lambda: len(written) == 3)
    finally:
        await follower.stop()

    assert [c for c, _ in written].count("globex") == 1
    acme_versions = [v for c, v in written if c == "acme"]
    assert acme_versions[1] > acme_versions[0]
    rows = sink.client.query(
        f"SELECT client_id, owner FROM {sink.database}.clients FINAL ORDER BY client_id"
    ).result_rows
    sink.close()
    assert rows == [("acme", "kato@us.example"), ("globex", "sato@us.example")]
    assert seen[-1].clients[0].owner in {"kato@us.example", "sato@us.example"}
    assert {c.client_id: c.owner for c in seen[-1].clients}["acme"] == "kato@us.example"
