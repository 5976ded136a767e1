"""``shinrai connect`` against a real Dovecot: obligations open and close, restarts lose nothing.

The SLA processor runs for real where facts are asserted; elsewhere the topic is read back and
compared with an independent list of the Message-IDs that were delivered.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from producers.parsers.email import email_event_id
from schemas.batches import looks_like_batch
from schemas.deadletter import ORIGIN, REASON, SOURCE
from schemas.facts import FactKind
from shinrai.settings import KafkaSettings
from tests.builders import policy_event
from tests.dovecot_server import DovecotServer, free_port
from tests.integration.streams.processor_harness import (
    CollectorFactory,
    Env,
    collector,
    processor_env,
    wait_until,
)
from tests.tls_ca import CertAuthority

from .conftest import (
    CLIENT,
    PASSWORD_ENV,
    STAFF,
    RunningConnector,
    connect_config,
    mailbox_entry,
    message,
    read_event_ids,
    read_topic,
    write_directory,
)

pytestmark = pytest.mark.integration
_ = (collector, processor_env)  # fixtures used by name

REPO = Path(__file__).resolve().parents[3]


def _event_ids(bootstrap: str, topic: str) -> Counter[str]:
    return Counter(read_event_ids(bootstrap, topic))


async def test_client_mail_opens_an_obligation_and_a_reply_in_sent_fulfils_it(
    dovecot: DovecotServer,
    processor_env: Callable[[], Env],
    collector: CollectorFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = processor_env()
    user, password = dovecot.add_user()
    monkeypatch.setenv(PASSWORD_ENV, password)
    dovecot.append(user, "Sent", [])  # the folder exists before the connector opens it
    facts = await collector(env.topics.facts)
    app, stats = env.build(env.new_app_id())
    await app.start()
    connector = RunningConnector(
        connect_config(tmp_path, mailbox_entry(dovecot, user, folders=("INBOX", "Sent"))),
        env.kafka,
        env.topics.interactions,
        env.topics.dlq,
    )
    try:
        policy = policy_event("acme", datetime.now(UTC) - timedelta(minutes=5))
        await env.send_events([policy])
        await wait_until(lambda: stats.events_in >= 1)
        await connector.start()
        await wait_until(
            lambda: connector.value("shinrai_connector_last_sync_timestamp_seconds") > 0
        )

        # Local delivery (a file in INBOX/new, as an MDA writes it): the clock starts.
        first_id, first = message(subject="Delivered locally")
        dovecot.deliver(user, first)
        await facts.wait_for(
            lambda _: sum(f.kind is FactKind.OBLIGATION_OPENED for f in facts.facts()) >= 1,
            within=20,
        )
        # IMAP APPEND to INBOX: a second conversation, a second obligation; and a message
        # without a sender, which goes to the dead-letter topic with its reason.
        second_id, second = message(subject="Appended")
        broken = b"Subject: no sender\r\nMessage-ID: <broken@test.example>\r\n\r\nbody\r\n"
        dovecot.append(user, "INBOX", [second, broken])
        await facts.wait_for(
            lambda _: sum(f.kind is FactKind.OBLIGATION_OPENED for f in facts.facts()) >= 2,
            within=20,
        )
        # The staff reply to the first, saved in Sent: that obligation is fulfilled.
        _, reply = message(
            sender=STAFF, to=CLIENT, subject="Re: Delivered locally", in_reply_to=first_id
        )
        dovecot.append(user, "Sent", [reply])
        await facts.wait_for(
            lambda _: any(f.kind is FactKind.FULFILLED for f in facts.facts()), within=20
        )
    finally:
        await connector.close()
        await app.stop()

    opened = [f for f in facts.facts() if f.kind is FactKind.OBLIGATION_OPENED]
    fulfilled = [f for f in facts.facts() if f.kind is FactKind.FULFILLED]
    assert {f.client_id for f in opened} == {"acme"}
    assert len(opened) == 2
    assert len(fulfilled) == 1
    assert fulfilled[0].obligation_id in {f.obligation_id for f in opened}
    # The second conversation is still owed: its obligation was not the one fulfilled.
    assert len({f.obligation_id for f in opened} - {f.obligation_id for f in fulfilled}) == 1
    assert connector.value("shinrai_connector_messages_total") == 4
    assert connector.value("shinrai_connector_rejected_total") == 1
    [letter] = read_topic(env.kafka.bootstrap, env.topics.dlq)
    headers = dict(letter.headers)
    assert letter.value == broken  # the original bytes, for a fix and a re-run
    assert b"From: missing" in headers[REASON]
    assert headers[SOURCE] == b"connect:imap:support"
    assert headers[ORIGIN].startswith(b"support/INBOX#uid=")
    assert connector.value("shinrai_connector_lag_messages") == 0
    ids = _event_ids(env.kafka.bootstrap, env.topics.interactions)
    assert ids[email_event_id(first_id)] == 1
    assert ids[email_event_id(second_id)] == 1


async def test_uidvalidity_reset_reads_the_folder_again_without_duplicates(
    dovecot: DovecotServer,
    processor_env: Callable[[], Env],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = processor_env()
    user, password = dovecot.add_user()
    monkeypatch.setenv(PASSWORD_ENV, password)
    old = [message(sender=STAFF, to=CLIENT, subject=f"old {n}") for n in range(3)]
    dovecot.append(user, "Sent", [raw for _, raw in old])
    connector = RunningConnector(
        connect_config(tmp_path, mailbox_entry(dovecot, user, folders=("Sent",))),
        env.kafka,
        env.topics.interactions,
        env.topics.dlq,
    )
    await connector.start()
    try:
        await wait_until(lambda: connector.value("shinrai_connector_messages_total") >= 3)
        validity_before = connector.checkpoints.get("support", "Sent:uidvalidity")  # type: ignore[union-attr]
        # The folder is recreated (new UIDVALIDITY, UIDs from 1 again) with the same mail + 1.
        dovecot.recreate_folder(user, "Sent")
        new_id, new = message(sender=STAFF, to=CLIENT, subject="new")
        dovecot.append(user, "Sent", [raw for _, raw in old] + [new])
        await wait_until(lambda: connector.value("shinrai_connector_skipped_total") >= 3, within=30)
        await wait_until(lambda: connector.value("shinrai_connector_events_total") >= 4, within=30)
        validity_after = connector.checkpoints.get("support", "Sent:uidvalidity")  # type: ignore[union-attr]
    finally:
        await connector.close()
    assert validity_before is not None
    assert validity_after != validity_before
    ids = _event_ids(env.kafka.bootstrap, env.topics.interactions)
    expected = {email_event_id(mid) for mid, _ in old} | {email_event_id(new_id)}
    assert set(ids) == expected
    assert all(count == 1 for count in ids.values()), ids


async def test_the_server_restarted_under_the_connector(
    dovecot: DovecotServer,
    processor_env: Callable[[], Env],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = processor_env()
    user, password = dovecot.add_user()
    monkeypatch.setenv(PASSWORD_ENV, password)
    before_id, before = message(subject="before the restart")
    dovecot.append(user, "INBOX", [before])
    connector = RunningConnector(
        connect_config(tmp_path, mailbox_entry(dovecot, user)),
        env.kafka,
        env.topics.interactions,
        env.topics.dlq,
    )
    await connector.start(backoff_max_s=1.0)
    try:
        await wait_until(lambda: connector.value("shinrai_connector_messages_total") >= 1)
        await asyncio.to_thread(dovecot.restart, 2.0)  # down for two seconds, then back
        after_id, after = message(subject="after the restart")
        dovecot.append(user, "INBOX", [after])
        await wait_until(
            lambda: connector.value("shinrai_connector_messages_total") >= 2, within=30
        )
    finally:
        await connector.close()
    assert connector.value("shinrai_connector_errors_total") >= 1  # the drop was seen and retried
    ids = _event_ids(env.kafka.bootstrap, env.topics.interactions)
    assert ids == Counter({email_event_id(before_id): 1, email_event_id(after_id): 1})


async def test_a_server_without_idle_is_polled(
    test_ca: CertAuthority,
    processor_env: Callable[[], Env],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = processor_env()
    server = DovecotServer(test_ca, idle=False)
    server.start()
    connector: RunningConnector | None = None
    try:
        user, password = server.add_user()
        monkeypatch.setenv(PASSWORD_ENV, password)
        client = server.client(user)
        assert b"IDLE" not in client.capabilities()  # type: ignore[attr-defined]
        client.logout()  # type: ignore[attr-defined]
        connector = RunningConnector(
            connect_config(tmp_path, mailbox_entry(server, user)),  # polls every second
            env.kafka,
            env.topics.interactions,
            env.topics.dlq,
        )
        await connector.start()
        await wait_until(
            lambda: connector.value("shinrai_connector_last_sync_timestamp_seconds") > 0  # type: ignore[union-attr]
        )
        mid, raw = message(subject="polled")
        server.append(user, "INBOX", [raw])
        await wait_until(
            lambda: connector.value("shinrai_connector_messages_total") >= 1,  # type: ignore[union-attr]
            within=15,
        )
    finally:
        if connector is not None:
            await connector.close()
        server.close()
    ids = _event_ids(env.kafka.bootstrap, env.topics.interactions)
    assert ids == Counter({email_event_id(mid): 1})


def _metric(port: int, name: str) -> float:
    """One sample of the connector's /metrics (0 until it serves)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _write_config(path: Path, entry: dict[str, object], state: Path) -> Path:
    path.write_text(yaml.safe_dump({"state_dir": str(state), "mailboxes": [entry]}))
    return path


def _cli(args: list[str], password: str, kafka: KafkaSettings, log: Path) -> subprocess.Popen[str]:
    """``shinrai connect`` as a child process; its stderr goes to ``log`` (a file, never a pipe
    nobody reads while it runs: a full pipe would stall the child)."""
    env = {
        **os.environ,
        "SHINRAI_LOG_LEVEL": "DEBUG",  # even at DEBUG: no body, no secret in the log
        PASSWORD_ENV: password,
        "PYTHONPATH": str(REPO),
        "SHINRAI_KAFKA__BOOTSTRAP": kafka.bootstrap,
    }
    with log.open("a") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "shinrai", "connect", "--no-progress", *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            text=True,
        )


def test_kill_9_in_the_middle_of_a_sync_then_restart_loses_nothing_and_sends_nothing_twice(
    dovecot: DovecotServer, processor_env: Callable[[], Env], tmp_path: Path
) -> None:
    env = processor_env()
    user, password = dovecot.add_user()
    total = 1500
    mail = [message(subject=f"m{n}") for n in range(total)]
    dovecot.append(user, "INBOX", [raw for _, raw in mail])
    expected = {email_event_id(mid) for mid, _ in mail}  # independent of the connector
    config = _write_config(
        tmp_path / "connect.yaml", mailbox_entry(dovecot, user), tmp_path / "state"
    )
    directory = write_directory(tmp_path / "clients.yaml")
    args = [
        "--config", str(config), "--directory", str(directory),
        "--topic", env.topics.interactions, "--dlq-topic", env.topics.dlq, "--batch-size", "10",
    ]  # fmt: skip

    port = free_port()
    log = tmp_path / "connect.log"
    first = _cli([*args, "--metrics-port", str(port)], password, env.kafka, log)
    try:
        deadline = time.monotonic() + 60
        read = 0.0
        while time.monotonic() < deadline and read < 50 and first.poll() is None:
            time.sleep(0.02)
            read = _metric(port, "shinrai_connector_messages_total")
        assert first.poll() is None, log.read_text()
        os.kill(first.pid, signal.SIGKILL)  # no goodbye: mid-batch, mid-checkpoint, anywhere
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    at_kill = _event_ids(env.kafka.bootstrap, env.topics.interactions)
    assert 0 < sum(at_kill.values()) < total, "the kill must land in the middle of the sync"

    second = _cli([*args, "--metrics-port", "0"], password, env.kafka, log)
    try:
        deadline = time.monotonic() + 120
        ids = at_kill
        while time.monotonic() < deadline and len(ids) < total:
            time.sleep(0.5)
            ids = _event_ids(env.kafka.bootstrap, env.topics.interactions)
        second.send_signal(signal.SIGINT)  # a clean Ctrl-C
        second.wait(timeout=30)
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    err = log.read_text()
    assert second.returncode == 0, err
    ids = _event_ids(env.kafka.bootstrap, env.topics.interactions)
    assert set(ids) == expected  # nothing lost
    assert [i for i, n in ids.items() if n > 1] == []  # nothing twice
    # The sync sent its fetched messages as event_batch records (SHINRAI_KAFKA__BATCH_EVENTS
    # at its default): the recovery above read those back.
    records = read_topic(env.kafka.bootstrap, env.topics.interactions)
    assert len(records) < total
    assert any(looks_like_batch(r.value) for r in records)
    assert "this body must never be logged" not in err
    assert password not in err


@pytest.mark.parametrize("mistake", ["wrong password", "untrusted certificate"])
def test_a_wrong_password_or_an_untrusted_certificate_is_one_clear_error(
    mistake: str, dovecot: DovecotServer, processor_env: Callable[[], Env], tmp_path: Path
) -> None:
    env = processor_env()
    user, password = dovecot.add_user()
    entry = mailbox_entry(dovecot, user, ca=mistake != "untrusted certificate")
    config = _write_config(tmp_path / "connect.yaml", entry, tmp_path / "state")
    given = "not-the-password" if mistake == "wrong password" else password
    args = ["--config", str(config), "--topic", env.topics.interactions, "--metrics-port", "0"]
    log = tmp_path / "connect.log"
    proc = _cli(args, given, env.kafka, log)
    try:
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = log.read_text()
    assert proc.returncode == 1
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, err
    assert "Traceback" not in err
    assert given not in err
    if mistake == "wrong password":
        assert "login refused for " + user in errors[0]
        assert f"Hint: check password_env {PASSWORD_ENV}" in err
    else:
        assert "certificate is not trusted" in errors[0]
        assert "ca_file" in err


async def test_a_batch_acknowledged_but_not_checkpointed_is_not_sent_again(
    dovecot: DovecotServer,
    processor_env: Callable[[], Env],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The crash window kill -9 rarely hits, made certain: the broker acknowledged a batch, the
    process died before the checkpoint. The pending entry written before sending lets the next
    run find the batch on the topic and send only the rest."""
    from producers.connectors.checkpoints import Checkpoints
    from producers.connectors.imap import pending_key
    from producers.connectors.runner import Publisher
    from producers.kafka_producer import KafkaRecordProducer
    from producers.parsers.email import message_event
    from producers.resolution import Resolver

    from .conftest import directory_model

    env = processor_env()
    user, password = dovecot.add_user()
    monkeypatch.setenv(PASSWORD_ENV, password)
    mail = [message(subject=f"m{n}") for n in range(3)]
    dovecot.append(user, "INBOX", [raw for _, raw in mail])
    config = connect_config(tmp_path, mailbox_entry(dovecot, user))

    # What the dead process did: pending entry, then the first two messages acknowledged.
    with KafkaRecordProducer(env.kafka) as producer, Checkpoints(config.state_dir) as store:
        publisher = Publisher(
            producer, topic=env.topics.interactions, dlq_topic=env.topics.dlq, kafka=env.kafka
        )
        resolver = Resolver(directory_model())
        early = [
            message_event(raw, resolver, origin="x", source="imap:support") for _, raw in mail[:2]
        ]
        ids = [r.event.event_id for r in early]  # type: ignore[union-attr]
        entry = {"ids": ids, "offsets": publisher.end_offsets()}
        store.put("support", pending_key("INBOX"), json.dumps(entry))
        publisher.for_source("imap:support")(early)
        publisher.close()

    connector = RunningConnector(config, env.kafka, env.topics.interactions, env.topics.dlq)
    await connector.start()
    try:
        await wait_until(lambda: connector.value("shinrai_connector_messages_total") >= 3)
    finally:
        await connector.close()
    assert connector.value("shinrai_connector_skipped_total") == 2
    assert connector.value("shinrai_connector_events_total") == 1
    counts = _event_ids(env.kafka.bootstrap, env.topics.interactions)
    assert counts == Counter({email_event_id(mid): 1 for mid, _ in mail})
    with Checkpoints(config.state_dir) as store:
        assert store.get("support", pending_key("INBOX")) is None
