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
* ``append_to_opened_p50_s`` / ``p99``: with the SLA processor running (one Faust worker in this
  process, default worker settings: 0.5 s allowed lateness, 0.2 s ticks), ``--appends`` client
  messages are appended over IMAP one every 0.5 s; each delay runs from the APPEND call to the
  moment the ``obligation_opened`` fact naming that message's event is read from the facts topic.
  The first append after the backlog is reported apart (``first_append_to_opened_s``): it also
  waits for the partition to turn from catching up to live.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

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


async def _run(messages: int, appends: int) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer

    from streams.app import build_app
    from streams.processor import ProcessorTopics, attach_processor

    kafka = KafkaSettings(
        bootstrap=os.environ.get("SHINRAI_KAFKA__BOOTSTRAP", "127.0.0.1:19092"),
        request_timeout_s=10,
        topic_partitions=3,
    )
    suffix = f"-bench-imap-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka, ALL_TOPICS, suffix=suffix)
    topics = ProcessorTopics.default(suffix)
    work = Path(tempfile.mkdtemp(prefix="bench-imap-"))
    server = DovecotServer(make_ca(work / "ca"))
    server.start()
    out: dict[str, Any] = {"messages": messages, "appends": appends}
    try:
        user, password = server.add_user()
        os.environ[PASSWORD_ENV] = password
        start_day = datetime.now(UTC) - timedelta(days=2)
        for n in range(messages):
            server.deliver(user, _message(n, start_day + timedelta(seconds=n))[1])
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
        config = ConnectConfig(state_dir=work / "state", mailboxes=(source,))
        resolver = Resolver(
            directory(client("acme", domains=("acme.example",)), staff_domains=("ours.example",))
        )
        producer = KafkaRecordProducer(kafka, client_id="bench-connect")
        checkpoints = Checkpoints(config.state_dir)
        metrics = ConnectorMetrics()
        stop = asyncio.Event()

        def read() -> float:
            return metrics.value("shinrai_connector_messages_total", "bench") or 0.0

        # The client's SLA policy first, as a directory announcement would have been.
        producer.send_and_wait(
            topics.interactions,
            key=b"acme",
            value=encode(policy_event("acme", start_day - timedelta(days=1))),
        )
        began = time.perf_counter()
        task = asyncio.create_task(
            run_connectors(
                config,
                resolver=resolver,
                publisher=Publisher(producer, topic=topics.interactions, dlq_topic=topics.dlq),
                checkpoints=checkpoints,
                stop=stop,
                metrics=metrics,
            )
        )
        try:
            await wait_for(lambda: read() >= messages, 1800, "the initial sync")
        except BaseException:
            stop.set()
            await task
            raise
        elapsed = time.perf_counter() - began
        _say(f"initial sync: {messages} messages in {elapsed:.1f} s")
        out["initial_sync_seconds"] = round(elapsed, 2)
        out["initial_sync_messages_per_s"] = round(messages / elapsed, 1)

        if appends:
            settings = Settings(
                kafka=kafka, worker=WorkerSettings(data_dir=work / "worker", store="rocksdb://")
            )
            app = build_app(
                settings,
                app_id=f"bench-imap-{uuid.uuid4().hex[:8]}",
                store=settings.worker.store,
                datadir=str(work / "worker"),
                topic_partitions=3,
            )
            stats = attach_processor(app, settings, topics)
            seen: dict[str, float] = {}
            consumer = AIOKafkaConsumer(
                topics.facts,
                bootstrap_servers=kafka.bootstrap,
                group_id=None,
                auto_offset_reset="earliest",
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
            try:
                await app.start()
                await consumer.start()
                reader = asyncio.create_task(collect())
                # The backlog of the initial sync is processed first (it is history).
                await wait_for(lambda: stats.events_in >= messages + 1, 900, "the backlog")
                _say("the processor read the backlog")
                delays: list[float] = []
                for n in range(appends):
                    mid, raw = _message(messages + n, datetime.now(UTC))
                    sent = time.perf_counter()
                    await asyncio.to_thread(server.append, user, "INBOX", [raw])
                    event_id = email_event_id(mid)
                    await wait_for(lambda e=event_id: e in seen, 60, "an obligation_opened fact")  # type: ignore[misc]
                    delays.append(seen[event_id] - sent)
                    await asyncio.sleep(0.5)
                # The first append after the backlog also waits for the partition to turn live
                # (its watermark leaves the backlog's event time): reported on its own.
                out["first_append_to_opened_s"] = round(delays[0], 3)
                delays = delays[1:] or delays
                out["append_to_opened_p50_s"] = round(percentile(delays, 50), 3)
                out["append_to_opened_p99_s"] = round(percentile(delays, 99), 3)
                out["append_to_opened_max_s"] = round(max(delays), 3)
            finally:
                if reader is not None:
                    reader.cancel()
                    await asyncio.gather(reader, return_exceptions=True)
                await consumer.stop()
                await app.stop()
                stop.set()
                await task
        stop.set()
        await task
        producer.close()
        checkpoints.close()
    finally:
        server.close()
        from bench.kafka_limits import delete_topics

        delete_topics(kafka, suffix)
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
