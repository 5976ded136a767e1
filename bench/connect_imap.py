"""``shinrai connect`` on a local Dovecot: first sync of a large mailbox, and APPEND → fact delay.

Run (a broker at ``SHINRAI_KAFKA__BOOTSTRAP``, Dovecot installed by
``deploy/ci/install-dovecot.sh``): ``.venv/bin/python -m bench.connect_imap [--messages 10000]
[--appends 40]``. Prints JSON.

* ``initial_sync_messages_per_s``: ``--messages`` small client messages are delivered into a
  fresh Maildir INBOX (local delivery, before the connector starts), then the connector (the
  same code as ``shinrai connect``: one IMAPS connection, TLS, batches of 200 acknowledged by the
  broker, ``acks=all``, then checkpointed with their event ids in SQLite) reads them all.
  Timed from the connector's start to the last batch's checkpoint; Dovecot indexes the new
  Maildir during the first SELECT, which is part of the figure.
* ``append_to_opened_p50_s`` / ``p99``: on fresh topics and an empty mailbox (no backlog: the
  live case), with the SLA processor running (one Faust worker in this process, default worker
  settings: 0.5 s allowed lateness, 0.2 s ticks) and the connector idling on INBOX,
  ``--appends`` client messages are appended over IMAP one every 0.5 s; each delay runs from the
  APPEND call to the moment the ``obligation_opened`` fact naming that message's event is read
  from the facts topic. The first append is reported apart (``first_append_to_opened_s``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from bench.kafka_limits import delete_topics
from bench.pipeline import percentile, wait_for
from producers.connectors.checkpoints import Checkpoints
from producers.connectors.config import ConnectConfig, MailboxSource
from producers.connectors.runner import ConnectorMetrics, Publisher, run_connectors
from producers.kafka_producer import KafkaRecordProducer
from producers.parsers.email import email_event_id
from producers.resolution import Resolver
from schemas.base import encode
from schemas.facts import Fact, FactKind
from schemas.topics import ALL_TOPICS
from shinrai.settings import KafkaSettings, Settings, WorkerSettings
from shinrai.topic_admin import ensure_topics
from tests.builders import client, directory, policy_event
from tests.dovecot_server import DovecotServer
from tests.tls_ca import make_ca

PASSWORD_ENV = "BENCH_IMAP_PASSWORD"


def _message(n: int, when: datetime) -> tuple[str, bytes]:
    mid = f"<bench-{n}-{uuid.uuid4().hex[:8]}@acme.example>"
    raw = (
        f"From: Bob <bob@acme.example>\r\nTo: support@ours.example\r\nSubject: question {n}\r\n"
        f"Date: {format_datetime(when)}\r\nMessage-ID: {mid}\r\n\r\n"
        + "Hello, a question about our order.\r\n"
        * 20
    )
    return mid, raw.encode()


class _Connector:
    """``run_connectors`` over one mailbox of ``server`` (the code of ``shinrai connect``)."""

    def __init__(self, kafka: KafkaSettings, server: DovecotServer, topics: Any, state: Path):
        user, password = server.add_user()
        os.environ[PASSWORD_ENV] = password
        self.user = user
        source = MailboxSource(
            name="bench",
            host=server.host,
            port=server.port,
            ca_file=server.ca.ca_pem,
            user=user,
            password_env=PASSWORD_ENV,
            owner="support@ours.example",
            folders=("INBOX",),
        )
        self.config = ConnectConfig(state_dir=state, mailboxes=(source,))
        self.producer = KafkaRecordProducer(kafka, client_id="bench-connect")
        self.checkpoints = Checkpoints(state)
        self.metrics = ConnectorMetrics()
        self.stop = asyncio.Event()
        self.topics = topics
        self.kafka = kafka
        self.publisher: Publisher | None = None
        self.task: asyncio.Task[Any] | None = None

    def start(self) -> None:
        resolver = Resolver(
            directory(client("acme", domains=("acme.example",)), staff_domains=("ours.example",))
        )
        publisher = self.publisher = Publisher(
            self.producer,
            topic=self.topics.interactions,
            dlq_topic=self.topics.dlq,
            kafka=self.kafka,
        )
        self.task = asyncio.create_task(
            run_connectors(
                self.config,
                resolver=resolver,
                publisher=publisher,
                checkpoints=self.checkpoints,
                stop=self.stop,
                metrics=self.metrics,
            )
        )

    def read(self) -> float:
        return self.metrics.value("shinrai_connector_messages_total", "bench") or 0.0

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None:
            await self.task
        if self.publisher is not None:
            self.publisher.close()
        self.producer.close()
        self.checkpoints.close()


async def _initial_sync(kafka: KafkaSettings, server: DovecotServer, messages: int) -> float:
    """Messages/s of the first sync of a mailbox of ``messages`` delivered messages."""
    suffix = f"-bench-imap-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka, ALL_TOPICS, suffix=suffix)
    from streams.processor import ProcessorTopics

    connector = _Connector(
        kafka, server, ProcessorTopics.default(suffix), server.root / "state-sync"
    )
    try:
        start_day = datetime.now(UTC) - timedelta(days=2)
        for n in range(messages):
            server.deliver(connector.user, _message(n, start_day + timedelta(seconds=n))[1])
        began = time.perf_counter()
        connector.start()
        await wait_for(lambda: connector.read() >= messages, 1800, "the initial sync")
        elapsed = time.perf_counter() - began
        _say(f"initial sync: {messages} messages in {elapsed:.1f} s")
        return elapsed
    finally:
        await connector.close()
        delete_topics(kafka, suffix)


async def _append_delays(kafka: KafkaSettings, server: DovecotServer, appends: int) -> list[float]:
    """APPEND → obligation_opened delays, SLA processor live on fresh topics (no backlog)."""
    from aiokafka import AIOKafkaConsumer

    from streams.app import build_app
    from streams.processor import ProcessorTopics, attach_processor

    suffix = f"-bench-imap-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka, ALL_TOPICS, suffix=suffix)
    topics = ProcessorTopics.default(suffix)
    work = server.root / "worker"
    settings = Settings(kafka=kafka, worker=WorkerSettings(data_dir=work, store="rocksdb://"))
    app = build_app(
        settings,
        app_id=f"bench-imap-{uuid.uuid4().hex[:8]}",
        store=settings.worker.store,
        datadir=str(work),
        topic_partitions=3,
    )
    stats = attach_processor(app, settings, topics)
    connector = _Connector(kafka, server, topics, server.root / "state-live")
    seen: dict[str, float] = {}
    consumer = AIOKafkaConsumer(
        topics.facts, bootstrap_servers=kafka.bootstrap, group_id=None, auto_offset_reset="earliest"
    )

    async def collect() -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=20)
            now = time.perf_counter()
            for records in batch.values():
                for record in records:
                    fact = Fact.model_validate_json(record.value)
                    if fact.kind is FactKind.OBLIGATION_OPENED and fact.source_event_id:
                        seen.setdefault(fact.source_event_id, now)

    reader: asyncio.Task[None] | None = None
    delays: list[float] = []
    try:
        await app.start()
        await consumer.start()
        reader = asyncio.create_task(collect())
        connector.producer.send_and_wait(
            topics.interactions,
            key=b"acme",
            value=encode(policy_event("acme", datetime.now(UTC) - timedelta(minutes=5))),
        )
        await wait_for(lambda: stats.events_in >= 1, 120, "the processor")
        connector.start()
        await wait_for(
            lambda: (
                (
                    connector.metrics.value(
                        "shinrai_connector_last_sync_timestamp_seconds", "bench"
                    )
                    or 0
                )
                > 0
            ),
            60,
            "the connector's first sync",
        )
        for n in range(appends):
            mid, raw = _message(n, datetime.now(UTC))
            sent = time.perf_counter()
            await asyncio.to_thread(server.append, connector.user, "INBOX", [raw])
            event_id = email_event_id(mid)
            await wait_for(lambda e=event_id: e in seen, 60, "an obligation_opened fact")  # type: ignore[misc]
            delays.append(seen[event_id] - sent)
            await asyncio.sleep(0.5)
        return delays
    finally:
        await connector.close()
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        await consumer.stop()
        await app.stop()
        delete_topics(kafka, suffix)


async def _run(messages: int, appends: int) -> dict[str, Any]:
    kafka = KafkaSettings(
        bootstrap=os.environ.get("SHINRAI_KAFKA__BOOTSTRAP", "127.0.0.1:19092"),
        request_timeout_s=10,
        topic_partitions=3,
    )
    ca_dir = Path(tempfile.mkdtemp(prefix="bench-imap-ca-"))
    server = DovecotServer(make_ca(ca_dir))
    server.start()
    out: dict[str, Any] = {"messages": messages, "appends": appends}
    try:
        if messages:
            elapsed = await _initial_sync(kafka, server, messages)
            out["initial_sync_seconds"] = round(elapsed, 2)
            out["initial_sync_messages_per_s"] = round(messages / elapsed, 1)
        if appends:
            delays = await _append_delays(kafka, server, appends)
            # The first append also waits for the worker's first live round: reported apart.
            out["first_append_to_opened_s"] = round(delays[0], 3)
            rest = delays[1:] or delays
            out["append_to_opened_p50_s"] = round(percentile(rest, 50), 3)
            out["append_to_opened_p99_s"] = round(percentile(rest, 99), 3)
            out["append_to_opened_max_s"] = round(max(rest), 3)
    finally:
        server.close()
        shutil.rmtree(ca_dir, ignore_errors=True)
    return out


def _say(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", file=sys.stderr, flush=True)


def main() -> None:
    """Parse the sizes, run, print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--appends", type=int, default=40)
    args = parser.parse_args()
    load = Path("/proc/loadavg").read_text().split()[:3]
    result = asyncio.run(_run(args.messages, args.appends))
    result["loadavg_before"] = load
    result["loadavg_after"] = Path("/proc/loadavg").read_text().split()[:3]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
