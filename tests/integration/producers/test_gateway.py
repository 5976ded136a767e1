"""The HTTP gateway served by real uvicorn on 127.0.0.1, producing to the real broker."""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.admin import KafkaAdminClient, NewTopic
from pydantic import SecretStr

from producers.gateway.app import create_app
from producers.gateway.settings import GatewaySettings
from schemas.base import decode, encode
from schemas.batches import EVENT_BATCH, split
from schemas.deadletter import ORIGIN, REASON, SOURCE
from schemas.events import CallOutcome, Flag, InteractionEvent
from shinrai.settings import KafkaSettings, Settings
from tests.builders import numbered_event
from tests.integration.producers.conftest import Record, items_of, kafka_partition
from tests.unit.producers.test_gateway_fuzz import generic_body, twilio_form, zoom_body

pytestmark = pytest.mark.integration

ZOOM_SECRET = "zoom-secret-for-tests"
TWILIO_TOKEN = "twilio-token-for-tests"
BEARER = "bearer-token-for-tests"
PUBLIC_BASE = "https://hooks.example.test"
DIRECTORY = """
clients:
  - client_id: acme
    name: Acme
    domains: [acme.example]
    phone_numbers: ["+14155550100"]
    owner: owner@ours.example
staff:
  domains: [ours.example]
  phone_numbers: ["+14155550199"]
"""


@dataclass
class Served:
    """A running gateway and where it writes."""

    url: str
    topic: str
    dlq: str


@pytest.fixture(scope="module")
def gateway(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """uvicorn serving the gateway in a thread on an ephemeral port, with its own topics."""
    suffix = uuid.uuid4().hex[:12]
    topic, dlq = f"test-gw-interactions-{suffix}", f"test-gw-dlq-{suffix}"
    admin = KafkaAdminClient(bootstrap_servers=broker, request_timeout_ms=15_000)
    admin.create_topics(
        [NewTopic(topic, num_partitions=3, replication_factor=1), NewTopic(dlq, 1, 1)]
    )
    directory = tmp_path_factory.mktemp("gateway") / "clients.yaml"
    directory.write_text(DIRECTORY)
    app = create_app(
        Settings(kafka=KafkaSettings(bootstrap=broker)),
        GatewaySettings(
            zoom_secret_token=SecretStr(ZOOM_SECRET),
            twilio_auth_token=SecretStr(TWILIO_TOKEN),
            bearer_tokens=(SecretStr("another-token"), SecretStr(BEARER)),
            public_base_url=PUBLIC_BASE,
            topic=topic,
            dlq_topic=dlq,
            directory=directory,
        ),
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "gateway thread died during startup"
        assert time.monotonic() < deadline, "gateway did not start"
        time.sleep(0.05)
    try:
        yield Served(url=f"http://127.0.0.1:{port}", topic=topic, dlq=dlq)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        admin.delete_topics([topic, dlq])
        admin.close()


def _zoom_headers(
    body: bytes, *, at: float | None = None, secret: str = ZOOM_SECRET
) -> dict[str, str]:
    stamp = str(int(time.time() if at is None else at))
    digest = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {
        "x-zm-request-timestamp": stamp,
        "x-zm-signature": f"v0={digest}",
        "content-type": "application/json",
    }


def _zoom_payload(event: str, meeting: str, **obj: object) -> bytes:
    return orjson.dumps(
        {
            "event": event,
            "event_ts": 1_700_000_000_000,
            "payload": {"account_id": "acct", "object": {"uuid": meeting, "id": "123", **obj}},
        }
    )


def _dead_letter_of(read: Callable[..., list[Record]], dlq: str, request_id: str) -> Record:
    for record in read(dlq, 1):
        if request_id.encode() in record.headers[ORIGIN]:
            return record
    raise AssertionError(f"no dead letter for request {request_id}")


def test_healthz(gateway: Served) -> None:
    response = httpx.get(f"{gateway.url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_zoom_meeting_is_produced_when_it_ends(
    gateway: Served, read_topic: Callable[..., list[Record]]
) -> None:
    meeting = f"meeting-{uuid.uuid4().hex}=="
    start, end = "2024-04-01T09:00:00Z", "2024-04-01T09:30:00Z"
    participant = {"user_name": "Client", "email": "someone@acme.example", "join_time": start}
    sequence = [
        _zoom_payload("meeting.started", meeting, start_time=start),
        _zoom_payload("meeting.participant_joined", meeting, participant=participant),
        _zoom_payload("meeting.ended", meeting, start_time=start, end_time=end),
    ]
    statuses = []
    for body in sequence:
        response = httpx.post(f"{gateway.url}/v1/zoom", content=body, headers=_zoom_headers(body))
        assert response.status_code == 200, response.text
        statuses.append(response.json()["status"])
    assert statuses == ["buffered", "buffered", "produced"]

    # A late participant_left (Zoom really sends it after meeting.ended) is not produced again.
    late = _zoom_payload(
        "meeting.participant_left", meeting, participant=participant | {"leave_time": end}
    )
    response = httpx.post(f"{gateway.url}/v1/zoom", content=late, headers=_zoom_headers(late))
    assert response.json()["status"] == "already_produced"

    records = [r for r in read_topic(gateway.topic, 1) if meeting.encode() in (r.value or b"")]
    assert len(records) == 1
    event = decode(InteractionEvent, records[0].value or b"")
    assert records[0].key == b"acme"
    assert event.client_id == "acme"
    assert Flag.CLIENT_ATTENDEE in event.flags
    assert event.duration_seconds == 1800


def test_zoom_bad_signature_is_401(gateway: Served) -> None:
    body = _zoom_payload("meeting.started", "m-bad", start_time="2024-04-01T09:00:00Z")
    headers = _zoom_headers(body, secret="not-the-secret")
    response = httpx.post(f"{gateway.url}/v1/zoom", content=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    # A body altered after signing fails too.
    headers = _zoom_headers(body)
    response = httpx.post(f"{gateway.url}/v1/zoom", content=body + b" ", headers=headers)
    assert response.status_code == 401


def test_zoom_stale_timestamp_is_401(gateway: Served) -> None:
    body = _zoom_payload("meeting.started", "m-stale", start_time="2024-04-01T09:00:00Z")
    headers = _zoom_headers(body, at=time.time() - 3600)  # correctly signed, an hour old
    response = httpx.post(f"{gateway.url}/v1/zoom", content=body, headers=headers)
    assert response.status_code == 401
    assert "stale" in response.json()["detail"]


def test_zoom_url_validation(gateway: Served) -> None:
    body = orjson.dumps(
        {"event": "endpoint.url_validation", "payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"}}
    )
    response = httpx.post(f"{gateway.url}/v1/zoom", content=body, headers=_zoom_headers(body))
    assert response.status_code == 200
    expected = hmac.new(ZOOM_SECRET.encode(), b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256)
    assert response.json() == {
        "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
        "encryptedToken": expected.hexdigest(),
    }


def _twilio_post(
    gateway: Served, params: dict[str, str], *, sign_url: str, token: str = TWILIO_TOKEN
) -> httpx.Response:
    payload = sign_url + "".join(k + params[k] for k in sorted(params))
    signature = base64.b64encode(
        hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    ).decode()
    return httpx.post(
        f"{gateway.url}/v1/twilio?source=status",
        content=urlencode(params).encode(),
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": signature,
        },
    )


def _call_params(sid: str) -> dict[str, str]:
    return {
        "AccountSid": "AC00000000000000000000000000000000",
        "CallSid": sid,
        "CallStatus": "completed",
        "Direction": "inbound",
        "From": "+14155550100",
        "To": "+14155550199",
        "CallDuration": "42",
        "Timestamp": "Mon, 01 Apr 2024 09:10:00 +0000",
        "CallbackSource": "call-progress-events",
    }


def test_twilio_signed_status_callback_is_produced(
    gateway: Served, read_topic: Callable[..., list[Record]]
) -> None:
    sid = "CA" + uuid.uuid4().hex
    response = _twilio_post(
        gateway, _call_params(sid), sign_url=f"{PUBLIC_BASE}/v1/twilio?source=status"
    )
    assert response.status_code == 200, response.text
    assert response.json()["event_ids"] == [f"twilio:{sid}"]

    records = [r for r in read_topic(gateway.topic, 1) if sid.encode() in (r.value or b"")]
    assert len(records) == 1
    event = decode(InteractionEvent, records[0].value or b"")
    assert records[0].key == b"acme"
    assert event.call_outcome is CallOutcome.ANSWERED
    assert event.duration_seconds == 42
    assert event.occurred_at.isoformat() == "2024-04-01T09:09:18+00:00"


def test_twilio_invalid_signature_is_401(gateway: Served) -> None:
    params = _call_params("CA" + uuid.uuid4().hex)
    wrong_token = _twilio_post(
        gateway, params, sign_url=f"{PUBLIC_BASE}/v1/twilio?source=status", token="wrong"
    )
    assert wrong_token.status_code == 401
    # Signed over the URL the app sees instead of the configured public URL: not what Twilio
    # would have signed, so it must not pass.
    local_url = _twilio_post(gateway, params, sign_url=f"{gateway.url}/v1/twilio?source=status")
    assert local_url.status_code == 401


def test_events_need_a_valid_bearer_token(gateway: Served) -> None:
    body = encode(numbered_event(1, "acme"))
    missing = httpx.post(f"{gateway.url}/v1/events", content=body)
    wrong = httpx.post(
        f"{gateway.url}/v1/events", content=body, headers={"authorization": "Bearer nope"}
    )
    assert missing.status_code == 401
    assert wrong.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")


def test_events_batch_is_produced(gateway: Served, read_topic: Callable[..., list[Record]]) -> None:
    run = uuid.uuid4().hex
    events = [
        numbered_event(n, c, event_id=f"{run}:{n}") for n, c in enumerate(["acme", "b", None])
    ]
    body = b"[" + b",".join(encode(e) for e in events) + b"]"
    response = httpx.post(
        f"{gateway.url}/v1/events", content=body, headers={"authorization": f"Bearer {BEARER}"}
    )
    assert response.status_code == 202, response.text
    assert response.json()["produced"] == 3

    items = [i for i in items_of(read_topic(gateway.topic, 3)) if run.encode() in i.value]
    assert {decode(InteractionEvent, i.value) for i in items} == set(events)
    keys = sorted((e.client_id or "_unknown").encode() for e in events)
    assert keys == [b"_unknown", b"acme", b"b"]
    for item in items:  # each on its key's partition; a record keyed by its (first) event
        key = (decode(InteractionEvent, item.value).client_id or "_unknown").encode()
        assert item.partition == kafka_partition(key, 3)
        if item.index in (None, 0):
            assert item.record.key == key


def test_a_bulk_post_goes_out_as_batch_records_per_partition(
    gateway: Served, read_topic: Callable[..., list[Record]]
) -> None:
    run = uuid.uuid4().hex
    clients = ["acme", "globex", "initech", "umbrella", None]
    events = [numbered_event(n, clients[n % 5], event_id=f"{run}:{n}") for n in range(40)]
    body = b"[" + b",".join(encode(e) for e in events) + b"]"
    response = httpx.post(
        f"{gateway.url}/v1/events", content=body, headers={"authorization": f"Bearer {BEARER}"}
    )
    assert response.status_code == 202, response.text

    records = [r for r in read_topic(gateway.topic, 40) if run.encode() in (r.value or b"")]
    # Five keys over three partitions: one batch record per partition that got any event.
    by_partition: dict[int, list[bytes]] = {}
    for event in events:
        key = (event.client_id or "_unknown").encode()
        by_partition.setdefault(kafka_partition(key, 3), []).append(encode(event))
    assert len(records) == len(by_partition)
    for record in records:
        batch = split(record.value)
        assert batch is not None
        assert batch[0] == EVENT_BATCH
        assert batch[1] == by_partition[record.partition]  # the request's order, per partition
        assert (
            record.key == (decode(InteractionEvent, batch[1][0]).client_id or "_unknown").encode()
        )


def test_oversize_body_is_413(gateway: Served) -> None:
    body = b"[" + b" " * (1024 * 1024) + b"]"
    response = httpx.post(
        f"{gateway.url}/v1/events", content=body, headers={"authorization": f"Bearer {BEARER}"}
    )
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"


def test_invalid_json_is_400_and_dead_lettered(
    gateway: Served, read_topic: Callable[..., list[Record]]
) -> None:
    body = b'{"event_id": "x", oops}'
    response = httpx.post(
        f"{gateway.url}/v1/events", content=body, headers={"authorization": f"Bearer {BEARER}"}
    )
    assert response.status_code == 400
    payload = response.json()
    assert payload["error"] == "invalid_json"
    assert "line 1 column" in payload["detail"]
    assert "Traceback" not in response.text

    letter = _dead_letter_of(read_topic, gateway.dlq, payload["request_id"])
    assert letter.value == body
    assert letter.headers[SOURCE] == b"gateway:events"
    assert b"not valid JSON" in letter.headers[REASON]


def test_invalid_event_is_422_naming_the_field(
    gateway: Served, read_topic: Callable[..., list[Record]]
) -> None:
    good = orjson.loads(encode(numbered_event(1, "acme")))
    bad = good | {"event_id": "bad-direction", "direction": "sideways"}
    body = orjson.dumps([good, bad])
    response = httpx.post(
        f"{gateway.url}/v1/events", content=body, headers={"authorization": f"Bearer {BEARER}"}
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == ["[1].direction"]
    assert "inbound" in errors[0]["reason"]

    letter = _dead_letter_of(read_topic, gateway.dlq, response.json()["request_id"])
    assert letter.value == body
    assert b"[1].direction" in letter.headers[REASON]


def test_zoom_payload_without_uuid_is_422_and_dead_lettered(
    gateway: Served, read_topic: Callable[..., list[Record]]
) -> None:
    body = orjson.dumps({"event": "meeting.ended", "payload": {"object": {"id": "1"}}})
    response = httpx.post(f"{gateway.url}/v1/zoom", content=body, headers=_zoom_headers(body))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "payload.object.uuid"
    letter = _dead_letter_of(read_topic, gateway.dlq, response.json()["request_id"])
    assert letter.value == body


def test_missing_zoom_headers_are_401_without_secrets(gateway: Served) -> None:
    body = _zoom_payload("meeting.started", "m-x", start_time="2024-04-01T09:00:00Z")
    response = httpx.post(f"{gateway.url}/v1/zoom", content=body, headers={})
    assert response.status_code == 401
    assert ZOOM_SECRET not in response.text


def test_large_malformed_zoom_body_is_422_and_dead_lettered_truncated(
    gateway: Served, read_topic: Callable[..., list[Record]]
) -> None:
    """A signed body under the gateway's limit but over the producer's: still a 4xx, never a
    503 (the dead letter itself would exceed Kafka's request size and the sender retry forever)."""
    # Just under the gateway's 1 MiB limit: with the dead letter's headers, the record is over
    # the producer's 1 MiB request limit.
    pad = "x" * (1024 * 1024 - 100 - len(b'{"event":{},"pad":""}'))
    body = orjson.dumps({"event": {}, "pad": pad})
    assert len(body) == 1024 * 1024 - 100
    response = httpx.post(
        f"{gateway.url}/v1/zoom", content=body, headers=_zoom_headers(body), timeout=30
    )
    assert response.status_code == 422, response.text
    letter = _dead_letter_of(read_topic, gateway.dlq, response.json()["request_id"])
    assert letter.value == body[:900_000]
    assert f"truncated to 900000 of {len(body)} bytes".encode() in letter.headers[REASON]


def test_signed_malformed_bodies_never_answer_5xx_against_the_broker(gateway: Served) -> None:
    """The unit fuzzer's strategies, a few hundred requests, through uvicorn and real Kafka."""
    seen: list[int] = []

    @settings(
        max_examples=300,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=st.one_of(
        zoom_body.map(lambda b: ("zoom", b)),
        twilio_form.map(lambda f: ("twilio", f)),
        generic_body.map(lambda b: ("events", b)),
    ))  # fmt: skip
    def post(request: tuple[str, Any]) -> None:
        endpoint, content = request
        if endpoint == "zoom":
            response = httpx.post(
                f"{gateway.url}/v1/zoom", content=content, headers=_zoom_headers(content)
            )
        elif endpoint == "twilio":
            response = _twilio_post(
                gateway, content, sign_url=f"{PUBLIC_BASE}/v1/twilio?source=status"
            )
        else:
            response = httpx.post(
                f"{gateway.url}/v1/events",
                content=content,
                headers={"authorization": f"Bearer {BEARER}"},
            )
        seen.append(response.status_code)
        assert response.status_code < 500, (endpoint, content, response.text)
        if response.status_code >= 400:
            assert response.json()["detail"]

    post()
    assert sum(1 for s in seen if 400 <= s < 500) > len(seen) // 3
