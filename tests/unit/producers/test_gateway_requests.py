"""Gateway request validation through starlette's TestClient, with an in-memory publisher.

Broker-backed behaviour (records really on Kafka) is in tests/integration/producers.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():
    # starlette 1.x warns that its TestClient wants the `httpx2` package; the project pins
    # httpx, which works, so the import-time deprecation is silenced here only.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

from producers.gateway.app import create_app
from producers.gateway.settings import GatewaySettings
from producers.gateway.twilio import call_resource
from producers.gateway.zoom import MeetingBuffer
from producers.kafka_producer import Record
from schemas.base import encode
from shinrai.errors import KafkaUnavailable
from shinrai.settings import Settings
from tests.builders import numbered_event

pytestmark = pytest.mark.unit

TOKEN = "unit-token"


class MemoryPublisher:
    """Records what the gateway publishes; can be told to fail like Kafka or like a bug."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.fail: BaseException | None = None

    def send_many_and_wait(self, records: Sequence[Record]) -> list[tuple[int, int]]:
        if self.fail is not None:
            raise self.fail
        self.records.extend(records)
        return [(0, i) for i in range(len(records))]


@pytest.fixture
def publisher() -> MemoryPublisher:
    return MemoryPublisher()


@pytest.fixture
def client(publisher: MemoryPublisher) -> Iterator[TestClient]:
    gateway = GatewaySettings(bearer_tokens=(SecretStr(TOKEN),), max_body_bytes=1000)
    app = create_app(Settings(), gateway, publisher_factory=lambda: publisher)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _auth() -> dict[str, str]:
    return {"authorization": f"Bearer {TOKEN}"}


def test_chunked_oversize_body_is_413_without_content_length(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b" " * 100

    response = client.post("/v1/events", content=chunks(), headers=_auth())
    assert response.status_code == 413


def test_unconfigured_endpoints_answer_503(client: TestClient) -> None:
    assert client.post("/v1/zoom", content=b"{}").status_code == 503
    assert client.post("/v1/twilio", content=b"a=b").status_code == 503


def test_kafka_trouble_is_503_with_retry_after(
    client: TestClient, publisher: MemoryPublisher
) -> None:
    publisher.fail = KafkaUnavailable("broker down at secret-host")
    response = client.post("/v1/events", content=encode(numbered_event(1, "acme")), headers=_auth())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "secret-host" not in response.text
    assert len(response.json()["error_id"]) == 32


def test_unexpected_error_is_an_opaque_500(client: TestClient, publisher: MemoryPublisher) -> None:
    publisher.fail = RuntimeError("internal detail that must not leak")
    response = client.post("/v1/events", content=encode(numbered_event(1, "acme")), headers=_auth())
    assert response.status_code == 500
    body = response.json()
    assert set(body) == {"error", "detail", "error_id"}
    assert "internal detail" not in response.text
    assert "Traceback" not in response.text


def test_single_event_is_published_keyed_by_client(
    client: TestClient, publisher: MemoryPublisher
) -> None:
    event = numbered_event(1, "acme")
    response = client.post("/v1/events", content=encode(event), headers=_auth())
    assert response.status_code == 202
    assert response.json() == {"produced": 1, "event_ids": [event.event_id]}
    assert [(r.key, r.value) for r in publisher.records] == [(b"acme", encode(event))]
    assert response.headers["x-request-id"]


def test_non_object_elements_and_empty_batches_are_422(
    client: TestClient, publisher: MemoryPublisher
) -> None:
    response = client.post("/v1/events", content=b"[1]", headers=_auth())
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "[0].<root>", "reason": "expected a JSON object"}
    ]
    assert client.post("/v1/events", content=b"[]", headers=_auth()).status_code == 422
    # The invalid body went to the DLQ topic, and nothing to the event topic.
    assert [r.topic for r in publisher.records] == ["interactions.dlq"]
    assert publisher.records[0].value == b"[1]"


def test_twilio_callback_to_call_resource() -> None:
    received = datetime(2024, 4, 1, 12, 0, tzinfo=UTC)
    call = call_resource(
        {
            "CallSid": "CA1",
            "CallStatus": "completed",
            "Direction": "outbound-api",
            "From": "+1",
            "To": "+2",
            "CallDuration": "60",
            "Timestamp": "Mon, 01 Apr 2024 09:10:00 +0000",
        },
        received,
    )
    assert call["start_time"] == "Mon, 01 Apr 2024 09:09:00 GMT"
    assert call["end_time"] == call["date_updated"] == "Mon, 01 Apr 2024 09:10:00 GMT"
    assert call["direction"] == "outbound-api"
    unanswered = call_resource({"CallSid": "CA2", "CallStatus": "no-answer"}, received)
    assert unanswered["start_time"] == "Mon, 01 Apr 2024 12:00:00 GMT"  # receive time
    assert "end_time" not in unanswered


def test_meeting_buffer_is_bounded_and_remembers_produced_meetings() -> None:
    buffer = MeetingBuffer(capacity=2)
    assert buffer.add("a", b"1") == [b"1"]
    assert buffer.add("a", b"2") == [b"1", b"2"]
    buffer.add("b", b"1")
    buffer.add("c", b"1")  # evicts "a", the longest idle
    assert buffer.add("a", b"3") == [b"3"]
    buffer.finish("c")
    assert buffer.produced("c")
    assert not buffer.produced("a")
