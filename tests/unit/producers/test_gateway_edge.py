"""The ingestion edge under the inputs of issue 18: each answers 4xx naming the field and why.

Deterministic cases (the fuzzer in test_gateway_fuzz.py covers the space around them): signed
Zoom bodies whose ``event`` is ``{}`` or ``[]``, Twilio durations of ``²`` and of 30 digits, and
identifiers with NUL, a right-to-left override, a zero-width joiner or full-width look-alikes,
through the gateway and through the JSONL importer.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from pydantic import SecretStr
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

from producers.gateway.app import create_app
from producers.gateway.settings import GatewaySettings
from producers.gateway.signatures import twilio_signature
from producers.jsonl import ParsedPolicy, parse_jsonl
from producers.kafka_producer import Record
from producers.parsers.base import Parsed, Rejected
from schemas.base import encode
from schemas.deadletter import REASON
from shinrai.settings import Settings
from tests.builders import numbered_event

pytestmark = pytest.mark.unit

ZOOM, TWILIO, BEARER = "edge-zoom-secret", "edge-twilio-token", "edge-bearer"
TWILIO_URL = "http://testserver/v1/twilio"


class Publisher:
    """Keeps what the gateway publishes (events and dead letters)."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def send_many_and_wait(self, records: Sequence[Record]) -> list[tuple[int, int]]:
        self.records.extend(records)
        return [(0, i) for i in range(len(records))]

    def topics(self) -> list[str]:
        return [r.topic for r in self.records]


@pytest.fixture
def publisher() -> Publisher:
    return Publisher()


@pytest.fixture
def client(publisher: Publisher) -> Iterator[TestClient]:
    gateway = GatewaySettings(
        zoom_secret_token=SecretStr(ZOOM),
        twilio_auth_token=SecretStr(TWILIO),
        bearer_tokens=(SecretStr(BEARER),),
    )
    app = create_app(Settings(), gateway, publisher_factory=lambda: publisher)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _zoom(client: TestClient, doc: Any) -> Any:
    body = orjson.dumps(doc)
    stamp = str(int(time.time()))
    digest = hmac.new(ZOOM.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    headers = {"x-zm-request-timestamp": stamp, "x-zm-signature": f"v0={digest}"}
    return client.post("/v1/zoom", content=body, headers=headers)


def _twilio(client: TestClient, **form: str) -> Any:
    params = sorted(form.items())
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": twilio_signature(TWILIO, TWILIO_URL, params),
    }
    return client.post("/v1/twilio", content=urlencode(params).encode(), headers=headers)


def _errors(response: Any) -> dict[str, str]:
    return {e["field"]: e["reason"] for e in response.json().get("errors", [])}


@pytest.mark.parametrize("event", [{}, [], 7, None])
def test_zoom_event_that_is_not_a_string_is_422(
    client: TestClient, publisher: Publisher, event: object
) -> None:
    response = _zoom(client, {"event": event, "payload": {"object": {"uuid": "m1"}}})
    assert response.status_code == 422
    assert _errors(response) == {"event": "expected a string"}
    assert publisher.topics() == ["interactions.dlq"]  # dead-lettered with the reason
    assert dict(publisher.records[0].headers or [])[REASON] == b"event: expected a string"


def _ended(**obj: object) -> dict[str, object]:
    return {"event": "meeting.ended", "payload": {"object": {"uuid": "m1", **obj}}}


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({**_ended(start_time="2024-04-01T09:00:00Z"), "event_ts": 10**18}, "event_ts"),
        ({**_ended(start_time="2024-04-01T09:00:00Z"), "event_ts": "1"}, "event_ts"),
        (_ended(start_time="0001-01-01T00:00:00+01:00"), "payload.object.start_time"),
        (_ended(), "payload.object.start_time"),  # ended, but no time anywhere
        (_ended(uuid="m\x001", start_time="2024-04-01T09:00:00Z"), "payload.object.uuid"),
        (
            {
                "event": "meeting.participant_joined",
                "payload": {"object": {"uuid": "m1", "participant": {"email": "a\u202e@x.io"}}},
            },
            "payload.object.participant.email",
        ),
    ],
)
def test_zoom_values_no_event_can_hold_are_422_naming_the_field(
    client: TestClient, doc: dict[str, object], field: str
) -> None:
    response = _zoom(client, doc)
    assert response.status_code == 422, response.text
    assert field in _errors(response)


CALL = {"CallSid": "CA1", "CallStatus": "completed", "Direction": "inbound", "From": "+1"}


@pytest.mark.parametrize(
    ("duration", "reason"),
    [
        ("²", "not a number of seconds (ASCII digits)"),
        ("٣", "not a number of seconds (ASCII digits)"),
        ("9" * 30, "longer than 86400 seconds"),
        ("inf", "not a number of seconds (ASCII digits)"),
        ("-5", "not a number of seconds (ASCII digits)"),
    ],
)
def test_twilio_duration_that_cannot_be_right_is_422(
    client: TestClient, publisher: Publisher, duration: str, reason: str
) -> None:
    response = _twilio(client, **CALL, CallDuration=duration)
    assert response.status_code == 422
    assert _errors(response) == {"CallDuration": reason}
    assert publisher.topics() == ["interactions.dlq"]


def test_twilio_valid_duration_and_bad_timestamps(client: TestClient) -> None:
    assert _twilio(client, **CALL, CallDuration="60.5").status_code == 200
    response = _twilio(client, **CALL, Timestamp="Mon, 01 Apr 2024")
    assert _errors(response) == {"Timestamp": "not an RFC 2822 date"}
    response = _twilio(
        client, **CALL, CallDuration="60", Timestamp="Fri, 31 Dec 9999 23:59:59 -0100"
    )
    assert _errors(response) == {"Timestamp": "out of range"}


def test_twilio_call_sid_follows_the_identifier_rule(client: TestClient) -> None:
    response = _twilio(client, **{**CALL, "CallSid": "CA\u202e1"})
    assert response.status_code == 422
    assert "RIGHT-TO-LEFT OVERRIDE" in _errors(response)["CallSid"]


@pytest.mark.parametrize(
    ("client_id", "named"),
    [("c\x0001", "U+0000"), ("c01\u202e", "U+202E"), ("c\u200d01", "U+200D")],
)
def test_generic_endpoint_refuses_control_and_bidi_client_ids(
    client: TestClient, publisher: Publisher, client_id: str, named: str
) -> None:
    body = orjson.dumps({**orjson.loads(encode(numbered_event(1, "c01"))), "client_id": client_id})
    response = client.post(
        "/v1/events", content=body, headers={"authorization": f"Bearer {BEARER}"}
    )
    assert response.status_code == 422
    assert named in _errors(response)["client_id"]
    assert publisher.topics() == ["interactions.dlq"]


def test_generic_endpoint_normalises_full_width_client_ids(
    client: TestClient, publisher: Publisher
) -> None:
    body = orjson.dumps({**orjson.loads(encode(numbered_event(1, "c01"))), "client_id": "ｃ０１"})
    response = client.post(
        "/v1/events", content=body, headers={"authorization": f"Bearer {BEARER}"}
    )
    assert response.status_code == 202
    assert [(r.topic, r.key) for r in publisher.records] == [("interactions.v1", b"c01")]
    assert orjson.loads(publisher.records[0].value)["client_id"] == "c01"


def test_jsonl_edge_rejects_naming_the_field_and_normalises(tmp_path: Path) -> None:
    good = orjson.loads(encode(numbered_event(1, "c01")))
    lines = [
        {**good, "event_id": "a", "client_id": "c\x0001"},
        {**good, "event_id": "b", "client_id": "c01\u202e"},
        {**good, "event_id": "c", "thread_key": "t\u200dk"},
        {**good, "event_id": "d", "client_id": "ｃ０１"},
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n")
    results = list(parse_jsonl(path))
    rejected = [r for r in results if isinstance(r, Rejected)]
    assert [r.reason.split(":")[0] for r in rejected] == ["client_id", "client_id", "thread_key"]
    assert "U+0000" in rejected[0].reason
    assert "RIGHT-TO-LEFT OVERRIDE" in rejected[1].reason
    assert "ZERO WIDTH JOINER" in rejected[2].reason
    parsed = [r for r in results if isinstance(r, Parsed | ParsedPolicy)]
    assert [(p.event.event_id, p.event.client_id) for p in parsed] == [("d", "c01")]
