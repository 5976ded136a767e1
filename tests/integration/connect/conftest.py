"""Fixtures for the ``shinrai connect`` tests: a private Dovecot, a client directory, mail.

Real parts only: Debian's Dovecot (``tests/dovecot_server.py``; IMAPS with a certificate of a
test CA, users in a passwd-file, Maildirs in a temporary folder), the live broker with private
topics (``processor_env`` of the streams harness) and the real SLA processor where facts matter.
Dovecot missing fails the tests under CI (``deploy/ci/install-dovecot.sh`` installs it); on a
developer machine it fails too, with the install command.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from producers.connectors.checkpoints import Checkpoints
from producers.connectors.config import ConnectConfig, MailboxSource
from producers.connectors.runner import ConnectorMetrics, Publisher, run_connectors
from producers.kafka_producer import KafkaRecordProducer
from producers.resolution import Resolver
from shinrai.settings import KafkaSettings
from tests.builders import client, directory
from tests.dovecot_server import DovecotServer, dovecot_binary
from tests.tls_ca import CertAuthority, make_ca
from tests.unit.producers.conftest import quiet_kafka_import

quiet_kafka_import()

STAFF = "hanako@ours.example"
CLIENT = "bob@acme.example"
PASSWORD_ENV = "SHINRAI_TEST_IMAP_PASSWORD"


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> CertAuthority:
    """One throw-away CA (and server certificate for 127.0.0.1) for the session."""
    return make_ca(tmp_path_factory.mktemp("imap-ca"))


@pytest.fixture
def dovecot(test_ca: CertAuthority) -> Iterator[DovecotServer]:
    """A running private Dovecot; stopped and removed after the test."""
    if dovecot_binary() is None:
        pytest.fail(
            "dovecot is not installed: run `bash deploy/ci/install-dovecot.sh` (Debian "
            "dovecot-imapd); the connect tests need a real IMAP server",
            pytrace=False,
        )
    server = DovecotServer(test_ca)
    server.start()
    yield server
    server.close()


def directory_model() -> Any:
    """Client ``acme`` (acme.example) and our staff domain ours.example."""
    return directory(client("acme", domains=("acme.example",)), staff_domains=("ours.example",))


def write_directory(path: Path) -> Path:
    """The same directory as a YAML file (for the CLI)."""
    import orjson

    from schemas.base import encode

    path.write_text(yaml.safe_dump(orjson.loads(encode(directory_model()))))
    return path


def message(
    *,
    sender: str = CLIENT,
    to: str = STAFF,
    subject: str = "Question",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    when: datetime | None = None,
) -> tuple[str, bytes]:
    """(Message-ID, RFC 822 bytes) of a small message."""
    mid = message_id or f"<{uuid.uuid4().hex}@test.example>"
    headers = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject}",
        f"Date: {format_datetime(when or datetime.now(UTC))}",
        f"Message-ID: {mid}",
    ]
    if in_reply_to:
        headers += [f"In-Reply-To: {in_reply_to}", f"References: {in_reply_to}"]
    body = "Hello,\r\nthis body must never be logged.\r\n"
    return mid, ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


def mailbox_entry(
    server: DovecotServer,
    user: str,
    *,
    folders: tuple[str, ...] = ("INBOX",),
    ca: bool = True,
    name: str = "support",
) -> dict[str, Any]:
    """One ``mailboxes`` entry of the connect configuration for ``user`` on ``server``."""
    entry: dict[str, Any] = {
        "name": name,
        "host": server.host,
        "port": server.port,
        "user": user,
        "password_env": PASSWORD_ENV,
        "owner": STAFF,
        "folders": list(folders),
        "poll_interval_s": 1.0,
    }
    if ca:
        entry["ca_file"] = str(server.ca.ca_pem)
    return entry


@dataclass
class RunningConnector:
    """``run_connectors`` in this test's event loop, with its own producer and checkpoints."""

    config: ConnectConfig
    kafka: KafkaSettings
    topic: str
    dlq: str
    metrics: ConnectorMetrics = field(default_factory=ConnectorMetrics)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[Any] | None = None
    producer: KafkaRecordProducer | None = None
    checkpoints: Checkpoints | None = None
    publisher: Publisher | None = None

    async def start(self, *, backoff_max_s: float = 2.0, batch_size: int = 50) -> None:
        self.producer = KafkaRecordProducer(self.kafka, client_id="test-connect")
        self.checkpoints = Checkpoints(self.config.state_dir)
        self.publisher = Publisher(
            self.producer, topic=self.topic, dlq_topic=self.dlq, kafka=self.kafka
        )
        self.task = asyncio.create_task(
            run_connectors(
                self.config,
                resolver=Resolver(directory_model()),
                publisher=self.publisher,
                checkpoints=self.checkpoints,
                stop=self.stop,
                metrics=self.metrics,
                batch_size=batch_size,
                backoff_max_s=backoff_max_s,
            )
        )

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, timeout=30)
        if self.publisher is not None:
            self.publisher.close()
        if self.producer is not None:
            self.producer.close()
        if self.checkpoints is not None:
            self.checkpoints.close()

    def value(self, name: str, source: str = "support") -> float:
        return self.metrics.value(name, source) or 0.0


def connect_config(tmp_path: Path, *mailboxes: dict[str, Any]) -> ConnectConfig:
    """A validated configuration with its state under ``tmp_path``."""
    return ConnectConfig(
        state_dir=tmp_path / "state",
        mailboxes=tuple(MailboxSource.model_validate(m) for m in mailboxes),
    )


def read_topic(bootstrap: str, topic: str, *, idle_ms: int = 1500) -> list[Any]:
    """Every record of ``topic`` now (reads until the end, all partitions)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=idle_ms,
    )
    try:
        return list(consumer)
    finally:
        consumer.close()


def read_event_ids(bootstrap: str, topic: str) -> list[str]:
    """The event id of every event on ``topic`` now, ``event_batch`` records expanded."""
    import orjson

    from schemas.batches import split

    ids: list[str] = []
    for record in read_topic(bootstrap, topic):
        batch = split(record.value)
        items = batch[1] if batch is not None else [record.value]
        ids.extend(orjson.loads(item)["event_id"] for item in items)
    return ids
