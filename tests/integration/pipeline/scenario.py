"""Scripted event logs and helpers for the pipeline tests (no fixtures here, see conftest).

Timing model: a worker's live watermark is the wall clock. Events stamped "now" when produced
arrive within the allowed lateness and are processed exactly as a replay would; events stamped
in the past are applied on the engine's late path, which for a fresh obligation gives the same
facts (timers computed from the event's own time, overdue ones fired at their exact instants).
Every scenario here stays within what the engine promises to process identically live and in
replay, so the replay of the same log is the independent expectation.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine.alerts import alert_for
from engine.core import Engine
from engine.replay import replay
from engine.state import Event
from schemas.alerts import Alert
from schemas.base import encode
from schemas.facts import Fact
from shinrai.jobs.worker import Worker, build_worker
from shinrai.settings import Settings
from sinks.alerts.routing import delivery_key
from tests.integration.alerts.harness import Receiver
from tests.kafka_records import expand_pairs

PARTITIONS = 3


def now() -> datetime:
    """The wall clock in UTC."""
    return datetime.now(UTC)


def expected_facts(events: Iterable[Event], settings: Settings, until: datetime) -> list[Fact]:
    """The facts of ``events`` by ``engine.replay`` (the batch twin), settled at ``until``."""
    engine = Engine(allowed_lateness=timedelta(seconds=settings.worker.allowed_lateness_s))
    return list(replay(list(events), engine, watermark_end=until))


def expected_alerts(facts: Iterable[Fact]) -> list[Alert]:
    """The alerts those facts raise."""
    return [a for a in (alert_for(f) for f in facts) if a is not None]


def fact_signature(fact: Fact) -> tuple[Any, ...]:
    """What must be equal live and in replay: full content of event-caused facts; for timer
    facts (no source event) the id, kind, obligation and exact instant."""
    if fact.source_event_id is None:
        return (fact.fact_id, fact.kind.value, fact.obligation_id, fact.at)
    return (fact.fact_id, fact.model_dump_json())


@dataclass
class Pipeline:
    """One test's settings (private topics, random database) and its webhook receiver."""

    settings: Settings
    receiver: Receiver
    tmp_path: Path
    produced: list[Event] = field(default_factory=list)

    @property
    def suffix(self) -> str:
        return self.settings.worker.topic_suffix

    def topic(self, base: str) -> str:
        return base + self.suffix

    def produce_raw(self, topic: str, records: list[tuple[bytes | None, bytes | None]]) -> None:
        """Produce records in order, acks=all (blocking: call through asyncio.to_thread)."""
        from kafka import KafkaProducer

        producer = KafkaProducer(
            bootstrap_servers=self.settings.kafka.bootstrap, acks="all", linger_ms=0
        )
        try:
            for key, value in records:
                producer.send(topic, key=key, value=value).get(timeout=30)
        finally:
            producer.close()

    async def send(self, *events: Event) -> None:
        """Produce ``events`` to the interactions topic and remember them for the replay."""
        self.produced.extend(events)
        records: list[tuple[bytes | None, bytes | None]] = [(e.key, encode(e)) for e in events]
        await asyncio.to_thread(self.produce_raw, self.topic("interactions.v1"), records)

    def delivery_key(self, alert: Alert) -> str:
        """The Idempotency-Key the receiver must see for ``alert`` (default target only)."""
        url = self.settings.alerts.webhook_url
        assert url is not None
        return delivery_key(alert.alert_id, url)


def facts_query(database: str) -> str:
    """Every fact row, deduplicated by the table's ReplacingMergeTree key."""
    return (
        f"SELECT fact_id, kind, client_id, at, obligation_id, source_event_id "
        f"FROM `{database}`.sla_facts FINAL ORDER BY fact_id"
    )


async def wait_until(
    predicate: Callable[[], bool], within: float, what: str, every: float = 0.05
) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(every)


def utc(value: object) -> datetime:
    """A DateTime64 read back from ClickHouse as an aware UTC datetime (chdb may drop the zone)."""
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def wall_time_of(monotonic_stamp: float) -> datetime:
    """A receiver's ``time.monotonic()`` stamp as a UTC wall-clock instant."""
    return now() - timedelta(seconds=time.monotonic() - monotonic_stamp)


def group_caught_up(bootstrap: str, group: str, topics: list[str]) -> bool:
    """True when ``group`` has committed the log end of every partition of ``topics``."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        try:
            offsets = admin.list_group_offsets({group: None}).get(group, {})
        except KafkaError:  # the coordinator is moving (a broker was killed): not yet
            return False
        committed = {tp: meta.offset for tp, meta in offsets.items()}
        wanted = [
            TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())
        ]
        ends = consumer.end_offsets(wanted)
        return all(end == 0 or committed.get(tp) == end for tp, end in ends.items())
    finally:
        consumer.close()
        admin.close()


_QUERY_SCRIPT = """
import json, sys
import clickhouse_connect
client = clickhouse_connect.get_client(interface="chdb", path=sys.argv[1])
out = [[list(map(str, row)) for row in client.query(sql).result_rows] for sql in sys.argv[2:]]
client.close()
print(json.dumps(out))
"""


def query_chdb_in_subprocess(path: Path, *sql: str) -> list[list[list[str]]]:
    """Run queries on a chdb directory in a fresh process (a process can hold one directory)."""
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _QUERY_SCRIPT, str(path), *sql],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: list[list[list[str]]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def read_topic(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    """Every record of ``topic`` (diagnostics after a failure)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=3000
    )
    try:
        return expand_pairs((m.key, m.value) for m in consumer)  # a batch record: its items
    finally:
        consumer.close()


@contextlib.asynccontextmanager
async def running_worker(settings: Settings) -> AsyncIterator[Worker]:
    """An in-process worker, stopped (flushed, committed) on exit."""
    worker = build_worker(settings)
    await worker.start()
    try:
        yield worker
    finally:
        await worker.stop()
