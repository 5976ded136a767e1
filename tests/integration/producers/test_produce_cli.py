"""``shinrai produce --format jsonl`` against the real broker: keys, partitions, DLQ, rejects."""

from __future__ import annotations

import base64
import gc
import logging
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from schemas.base import decode
from schemas.deadletter import ORIGIN, REASON, SOURCE
from schemas.events import InteractionEvent
from shinrai.cli import main
from tests.builders import jsonl, numbered_event
from tests.integration.producers.conftest import Record, items_of, kafka_partition

pytestmark = pytest.mark.integration

CLIENTS = ("acme", "globex", "initech", "umbrella", "hooli")
# A line that is valid JSON but misses a required field (occurred_at).
BAD_LINE = (
    b'{"event_id":"bad-1","channel":"email","kind":"message","direction":"inbound",'
    b'"recorded_at":"2024-04-01T09:00:00+00:00","client_id":"acme"}'
)


def _input_file(tmp_path: Path) -> tuple[Path, list[InteractionEvent]]:
    events = [numbered_event(n, CLIENTS[n % len(CLIENTS)]) for n in range(60)]
    events += [numbered_event(n, None) for n in range(3)]
    body = jsonl(events[:30]) + BAD_LINE + b"\n" + jsonl(events[30:])
    body += jsonl(events[:2])  # the same event ids again: duplicates, produced once
    path = tmp_path / "events.jsonl"
    path.write_bytes(body)
    return path, events


def _produce(broker: str, path: Path, topic: str, dlq: str, *options: str) -> dict[str, Any]:
    """``shinrai produce --format jsonl --json`` of ``path`` to ``topic``: it must succeed; its
    JSON summary."""
    result = CliRunner().invoke(
        main,
        [
            *("produce", str(path), "--format", "jsonl", "--topic", topic, "--dlq-topic", dlq),
            *(*options, "--json", "--no-progress"),
        ],
        env={"SHINRAI_KAFKA__BOOTSTRAP": broker},
    )
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = orjson.loads(result.stdout)
    return summary


def test_produce_jsonl_to_kafka(
    tmp_path: Path,
    broker: str,
    make_topic: Callable[..., str],
    read_topic: Callable[..., list[Record]],
) -> None:
    path, events = _input_file(tmp_path)
    topic = make_topic("interactions", partitions=4)
    dlq = make_topic("dlq")
    rejects = tmp_path / "rejects.jsonl"

    summary = _produce(broker, path, topic, dlq, "--rejects", str(rejects))
    assert summary["produced"] == len(events)
    assert summary["duplicates"] == 2
    assert summary["rejected"] == 1
    assert summary["unknown_client"] == 3

    items = items_of(read_topic(topic, len(events)))
    assert len(items) == len(events)
    got = {decode(InteractionEvent, i.value) for i in items}
    assert got == set(events)

    partitions_of_key: dict[bytes | None, set[int]] = defaultdict(set)
    first_keys: dict[tuple[int, int], bytes] = {}
    for item in items:
        event = decode(InteractionEvent, item.value)
        key = (event.client_id or "_unknown").encode()
        # A record's key is its (first) event's; each event sits on its key's partition.
        first_keys.setdefault((item.partition, item.record.offset), key)
        assert item.record.key == first_keys[(item.partition, item.record.offset)]
        assert item.partition == kafka_partition(key, 4)
        partitions_of_key[key].add(item.partition)
    assert all(len(parts) == 1 for parts in partitions_of_key.values()), partitions_of_key
    assert set(partitions_of_key) == {c.encode() for c in CLIENTS} | {b"_unknown"}
    # Six keys over four partitions: the keys really are spread, not all on one partition.
    assert len({p for parts in partitions_of_key.values() for p in parts}) > 1

    dead = read_topic(dlq, 1)
    assert len(dead) == 1
    assert dead[0].value == BAD_LINE
    assert b"occurred_at" in dead[0].headers[REASON]
    assert dead[0].headers[SOURCE] == b"produce:jsonl"
    assert dead[0].headers[ORIGIN] == b"events.jsonl:31"

    lines = rejects.read_bytes().splitlines()
    assert len(lines) == 1
    reject = orjson.loads(lines[0])
    assert base64.b64decode(reject["raw_base64"]) == BAD_LINE
    assert reject["origin"] == "events.jsonl:31"
    assert reject["reason"].startswith("occurred_at: ")


# kafka-python 3.0.12 does not close the sockets of refused connection attempts; they are freed
# (with a ResourceWarning) only by the garbage collector, which the test runs itself.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_produce_fails_loudly_without_broker(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, _ = _input_file(tmp_path)
    # kafka-python logs the connection errors with their tracebacks; pytest keeps log records
    # until the report is written, and they would keep the leaked sockets alive past this test.
    caplog.set_level(logging.CRITICAL, logger="kafka")
    result = CliRunner().invoke(
        main,
        ["produce", str(path), "--format", "jsonl", "--no-progress"],
        # Nothing listens on port 1: the run must fail with exit 1, not hang or report success.
        env={"SHINRAI_KAFKA__BOOTSTRAP": "127.0.0.1:1", "SHINRAI_KAFKA__REQUEST_TIMEOUT_S": "2"},
    )
    exit_code, stderr = result.exit_code, result.stderr
    del result  # its traceback also keeps the leaked sockets alive
    gc.collect()
    assert exit_code == 1, stderr
    assert "no Kafka broker answers at 127.0.0.1:1 " in stderr
    assert "shinrai kafka start --port 1`" in stderr


def test_produce_with_out_writes_exactly_what_the_topic_receives(
    tmp_path: Path,
    broker: str,
    make_topic: Callable[..., str],
    read_topic: Callable[..., list[Record]],
) -> None:
    path, events = _input_file(tmp_path)
    topic = make_topic("interactions")  # one partition: the topic's order is the send order
    out = tmp_path / "out.jsonl"
    summary = _produce(broker, path, topic, make_topic("dlq"), "--out", str(out))
    assert summary["produced"] == summary["written"] == len(events)
    items = items_of(read_topic(topic, len(events)))
    assert [i.value for i in items] == out.read_bytes().splitlines()
    sent = [decode(InteractionEvent, i.value) for i in items]
    assert [(e.occurred_at, e.event_id) for e in sent] == sorted(
        (e.occurred_at, e.event_id) for e in events
    )
