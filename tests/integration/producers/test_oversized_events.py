"""An event larger than its topic takes, against the real broker: ``shinrai produce`` and the
gateway refuse it with its event id and the limit (the topic's max.message.bytes, read from the
broker), dead-letter it like other bad input, and everything else still goes through."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import pytest
import uvicorn
from click.testing import CliRunner
from kafka.admin import KafkaAdminClient, NewTopic
from pydantic import SecretStr

from producers.gateway.app import create_app
from producers.gateway.settings import GatewaySettings
from schemas.base import decode, encode
from schemas.deadletter import REASON, TRUNCATED
from schemas.events import ClientPolicyChanged, InteractionEvent
from shinrai.cli import main
from shinrai.settings import KafkaSettings, Settings
from tests.builders import ALWAYS_OPEN, NUMBERED_BASE, ONE_MINUTE, numbered_event, policy_change
from tests.integration.producers.conftest import Record, items_of

pytestmark = pytest.mark.integration

BEARER = "bearer-token-for-size-tests"
SMALL_LIMIT = 5_000  # max.message.bytes of the small topics: a 10 kB event is over it


def big_event(n: int, size: int) -> ClientPolicyChanged:
    """Policy change number ``n`` of client ``acme`` whose canonical JSON is over ``size`` bytes
    (a calendar that lists very many iCal feeds: the one unbounded part of an engine input)."""
    feeds = tuple(f"https://calendars.example/{i:08d}.ics" for i in range(size // 40 + 1))
    calendar = ALWAYS_OPEN.model_copy(update={"ical_feeds": feeds})
    when = NUMBERED_BASE + timedelta(minutes=n)
    return policy_change(f"policy-acme-{n}", when, ONE_MINUTE, calendar, client="acme")


def lines(*events: InteractionEvent | ClientPolicyChanged) -> bytes:
    return b"".join(encode(e) + b"\n" for e in events)


@pytest.fixture
def small_topics(broker: str) -> Iterator[tuple[str, str]]:
    """An interactions topic taking at most SMALL_LIMIT bytes a record, and its DLQ."""
    suffix = uuid.uuid4().hex[:12]
    topic, dlq = f"test-size-{suffix}", f"test-size-dlq-{suffix}"
    admin = KafkaAdminClient(bootstrap_servers=broker, request_timeout_ms=15_000)
    admin.create_topics(
        [
            NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": str(SMALL_LIMIT)}),
            NewTopic(dlq, 1, 1),
        ]
    )
    try:
        yield topic, dlq
    finally:
        admin.delete_topics([topic, dlq])
        admin.close()


def produce(broker: str, path: Path, topic: str, dlq: str, rejects: Path) -> dict[str, object]:
    result = CliRunner().invoke(
        main,
        [
            *("produce", str(path), "--format", "jsonl", "--topic", topic, "--dlq-topic", dlq),
            *("--rejects", str(rejects), "--json", "--no-progress"),
        ],
        env={"SHINRAI_KAFKA__BOOTSTRAP": broker},
    )
    assert result.exit_code == 0, result.output
    summary: dict[str, object] = orjson.loads(result.stdout)
    return summary


def test_a_2_mb_event_is_rejected_and_the_rest_of_the_file_goes_through(
    tmp_path: Path,
    broker: str,
    make_topic: Callable[..., str],
    read_topic: Callable[..., list[Record]],
) -> None:
    first, big, last = numbered_event(1, "acme"), big_event(2, 2_000_000), numbered_event(3, "acme")
    assert len(encode(big)) > 2_000_000
    path = tmp_path / "events.jsonl"
    path.write_bytes(lines(first, big, last))
    topic, dlq = make_topic("test-size"), make_topic("test-size-dlq")  # broker defaults
    rejects = tmp_path / "rejects.jsonl"

    summary = produce(broker, path, topic, dlq, rejects)
    assert (summary["read"], summary["produced"], summary["rejected"]) == (3, 2, 1)

    sent = [decode(InteractionEvent, i.value) for i in items_of(read_topic(topic, 2))]
    assert [e.event_id for e in sent] == [first.event_id, last.event_id]
    [reject] = [orjson.loads(line) for line in rejects.read_bytes().splitlines()]
    # The producer's own request limit (1 MiB) is below the broker's default topic limit.
    reason = f"event {big.event_id} is "
    assert reject["reason"].startswith(reason)
    assert "over the 1,048,576-byte limit of topic " + topic in reject["reason"]
    assert reject["origin"] == "events.jsonl:2"
    [letter] = read_topic(dlq, 1)
    assert letter.headers[REASON].decode() == reject["reason"]
    assert int(letter.headers[TRUNCATED]) == len(encode(big))  # cut to fit the DLQ


def test_the_limit_is_the_topics_own_max_message_bytes(
    tmp_path: Path,
    broker: str,
    small_topics: tuple[str, str],
    read_topic: Callable[..., list[Record]],
) -> None:
    topic, dlq = small_topics
    big = big_event(2, 10_000)
    path = tmp_path / "events.jsonl"
    path.write_bytes(lines(numbered_event(1, "acme"), big))
    rejects = tmp_path / "rejects.jsonl"

    summary = produce(broker, path, topic, dlq, rejects)
    assert (summary["produced"], summary["rejected"]) == (1, 1)
    assert len(read_topic(topic, 1)) == 1
    [letter] = read_topic(dlq, 1)
    reason = letter.headers[REASON].decode()
    assert reason.startswith(f"event {big.event_id} is ")
    assert f"over the {SMALL_LIMIT:,}-byte limit of topic {topic}" in reason
    assert decode(ClientPolicyChanged, letter.value or b"") == big  # whole: the DLQ takes it


@pytest.fixture
def gateway_url(broker: str, small_topics: tuple[str, str]) -> Iterator[str]:
    topic, dlq = small_topics
    app = create_app(
        Settings(kafka=KafkaSettings(bootstrap=broker)),
        GatewaySettings(bearer_tokens=(SecretStr(BEARER),), topic=topic, dlq_topic=dlq),
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "gateway thread died during startup"
        assert time.monotonic() < deadline, "gateway did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def test_the_gateway_answers_413_naming_the_event_and_the_limit(
    gateway_url: str, small_topics: tuple[str, str], read_topic: Callable[..., list[Record]]
) -> None:
    topic, dlq = small_topics
    small, big = numbered_event(1, "acme"), big_event(2, 10_000)
    headers = {"authorization": f"Bearer {BEARER}", "content-type": "application/json"}
    batch = b"[" + encode(small) + b"," + encode(big) + b"]"

    refused = httpx.post(f"{gateway_url}/v1/events", content=batch, headers=headers, timeout=30)
    assert refused.status_code == 413
    body = refused.json()
    assert body["error"] == "event_too_large"
    assert body["detail"].startswith(f"event {big.event_id} is ")
    assert f"over the {SMALL_LIMIT:,}-byte limit of topic {topic}" in body["detail"]
    [letter] = read_topic(dlq, 1)
    assert letter.headers[REASON].decode() == body["detail"]

    accepted = httpx.post(
        f"{gateway_url}/v1/events", content=encode(small), headers=headers, timeout=30
    )
    assert accepted.status_code == 202
    # The batch was all or nothing: only the later, small request reached the topic.
    assert [decode(InteractionEvent, r.value or b"") for r in read_topic(topic, 1)] == [small]
