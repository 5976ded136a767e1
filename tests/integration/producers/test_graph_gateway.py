"""Microsoft Graph change notifications through the real gateway (uvicorn on loopback) into Kafka.

No Microsoft Graph can be reached here, so the resources are Microsoft's own recorded examples
(shared data ``meetings/msgraph-examples``), the fetcher that would GET them from Graph is a
recorded stand-in (``RecordedFetcher``) and rich notifications are encrypted by the tests the
way Graph documents it: those are the doubles, everything else is real.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from kafka.admin import KafkaAdminClient, NewTopic
from pydantic import SecretStr

from producers.gateway.app import create_app
from producers.gateway.settings import GatewaySettings
from producers.parsers.email import email_event_id
from schemas.base import decode
from schemas.events import Channel, Flag, InteractionEvent
from shinrai.settings import KafkaSettings, Settings
from tests.integration.producers.conftest import Record
from tests.shared_data import shared_path
from tests.unit.producers.test_graph_crypto import encrypt, new_key, write_pem

pytestmark = pytest.mark.integration

CLIENT_STATE = "graph-client-state-for-tests"
DIRECTORY = """
clients:
  - client_id: contoso
    name: Contoso
    domains: [contoso.onmicrosoft.com, a830edad905084922e17020313.onmicrosoft.com]
    owner: owner@ours.example
staff:
  domains: [ours.example]
"""
EVENT_RESOURCE = "Users/cd209b0b/Events/AAMkAGIAAAoZDOFAAA="


def _example(name: str) -> dict[str, Any]:
    data = orjson.loads((shared_path("meetings/msgraph-examples") / name).read_bytes())
    assert isinstance(data, dict)
    return data


@dataclass
class RecordedFetcher:
    """Answers a notification with the recorded resource of its ``resource`` path."""

    resources: Mapping[str, Mapping[str, Any]]
    asked: list[str] = field(default_factory=list)
    fail: bool = False

    async def fetch(self, notification: Mapping[str, Any]) -> Mapping[str, Any] | None:
        resource = str(notification.get("resource"))
        self.asked.append(resource)
        if self.fail:
            raise ConnectionError("graph unreachable")
        return self.resources.get(resource)


@dataclass
class Served:
    url: str
    topic: str
    dlq: str
    fetcher: RecordedFetcher
    key: rsa.RSAPrivateKey


@pytest.fixture(scope="module")
def graph_gateway(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The gateway with a Graph clientState and a recorded fetcher, on an ephemeral port."""
    suffix = uuid.uuid4().hex[:12]
    topic, dlq = f"test-graph-{suffix}", f"test-graph-dlq-{suffix}"
    admin = KafkaAdminClient(bootstrap_servers=broker, request_timeout_ms=15_000)
    admin.create_topics([NewTopic(topic, 1, 1), NewTopic(dlq, 1, 1)])
    directory: Path = tmp_path_factory.mktemp("graph") / "clients.yaml"
    directory.write_text(DIRECTORY)
    fetcher = RecordedFetcher({EVENT_RESOURCE: _example("event-get__ex1.json")})
    key = new_key()
    key_file = write_pem(key, directory.parent / "graph.pem")
    app = create_app(
        Settings(kafka=KafkaSettings(bootstrap=broker)),
        GatewaySettings(
            graph_client_state=SecretStr(CLIENT_STATE),
            topic=topic,
            dlq_topic=dlq,
            directory=directory,
            graph_private_key_file=key_file,
        ),
        graph_fetcher=fetcher,
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
        yield Served(f"http://127.0.0.1:{port}", topic, dlq, fetcher, key)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        admin.delete_topics([topic, dlq])
        admin.close()


def _post(served: Served, notifications: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(
        f"{served.url}/v1/graph/notifications",
        content=orjson.dumps({"value": notifications}),
        headers={"content-type": "application/json"},
        timeout=30,
    )


def _metric(served: Served, line_start: str) -> float:
    text = httpx.get(f"{served.url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _notification(**fields: Any) -> dict[str, Any]:
    return {
        "subscriptionId": "7f105c7d-2dc5-4530-97cd-4e7ae6534c07",
        "subscriptionExpirationDateTime": "2030-01-01T00:00:00Z",
        "tenantId": "84bd8158-6d4d-4958-8b9f-9d6445542f95",
        "clientState": CLIENT_STATE,
        **fields,
    }


def _events(records: list[Record]) -> dict[str, InteractionEvent]:
    return {e.event_id: e for e in (decode(InteractionEvent, r.value or b"") for r in records)}


def test_the_validation_handshake_echoes_the_token(graph_gateway: Served) -> None:
    token = "Validation: Testing client application reachability for subscription Request-Id: 1"
    response = httpx.post(
        f"{graph_gateway.url}/v1/graph/notifications",
        params={"validationToken": token},
        headers={"content-type": "text/plain"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == token


def test_a_wrong_client_state_is_refused_and_nothing_is_processed(
    graph_gateway: Served, read_topic: Callable[..., list[Record]]
) -> None:
    before = _metric(graph_gateway, 'shinrai_graph_refused_total{reason="client_state"}')
    message = {**_example("message-get__ex1.json"), "internetMessageId": "<forged-1@test>"}
    good = _notification(changeType="created", resource="Users/x/Messages/1", resourceData=message)
    forged = {**good, "clientState": "guessed"}
    response = _post(graph_gateway, [good, forged])  # one forged notification spoils the request
    assert response.status_code == 403
    assert response.json()["error"] == "invalid_client_state"
    missing = {k: v for k, v in good.items() if k != "clientState"}
    assert _post(graph_gateway, [missing]).status_code == 403
    after = _metric(graph_gateway, 'shinrai_graph_refused_total{reason="client_state"}')
    assert after == before + 2
    produced = _events(read_topic(graph_gateway.topic, 1, timeout_s=3.0))
    assert email_event_id("<forged-1@test>") not in produced
    assert read_topic(graph_gateway.dlq, 1, timeout_s=1.0) == []


def test_a_rich_message_notification_becomes_the_importers_event(
    graph_gateway: Served, read_topic: Callable[..., list[Record]]
) -> None:
    message = _example("message-get__ex1.json")
    response = _post(
        graph_gateway,
        [
            _notification(
                changeType="created",
                resource="Users/7f180cbb/Messages/AAMkADhMGAAA=",
                resourceData={"@odata.type": "#Microsoft.Graph.Message", **message},
            )
        ],
    )
    assert response.status_code == 202, response.text
    expected_id = email_event_id(message["internetMessageId"])
    assert response.json()["event_ids"] == [expected_id]
    event = _events(read_topic(graph_gateway.topic, 1))[expected_id]
    assert event.channel is Channel.EMAIL
    assert event.client_id == "contoso"
    assert event.occurred_at.isoformat() == "2018-09-09T03:15:06+00:00"  # sentDateTime
    assert event.subject == message["subject"]


def test_a_basic_event_notification_is_fetched_and_produced_when_held(
    graph_gateway: Served, read_topic: Callable[..., list[Record]]
) -> None:
    basic = _notification(
        changeType="updated",
        resource=EVENT_RESOURCE,
        resourceData={
            "@odata.type": "#Microsoft.Graph.Event",
            "@odata.id": EVENT_RESOURCE,
            "id": "AAMkAGIAAAoZDOFAAA=",
        },
    )
    response = _post(graph_gateway, [basic])
    assert response.status_code == 202, response.text
    assert graph_gateway.fetcher.asked[-1] == EVENT_RESOURCE
    assert response.json()["event_ids"] == ["graph:AAMkAGIAAAoZDOFAAA="]
    event = _events(read_topic(graph_gateway.topic, 1))["graph:AAMkAGIAAAoZDOFAAA="]
    assert {Flag.HELD, Flag.CLIENT_ATTENDEE} <= event.flags
    # 10:00 Pacific Standard Time (a Windows zone name) on 2017-04-21 is 17:00 UTC (PDT).
    assert event.occurred_at.isoformat() == "2017-04-21T17:00:00+00:00"
    assert event.duration_seconds == 7200


def test_unresolvable_and_lifecycle_notifications_are_counted(graph_gateway: Served) -> None:
    unresolved = 'shinrai_graph_notifications_total{kind="message",outcome="unresolved"}'
    missed = 'shinrai_graph_lifecycle_total{event="missed"}'
    reauth = 'shinrai_graph_lifecycle_total{event="reauthorizationRequired"}'
    before = [_metric(graph_gateway, m) for m in (unresolved, missed, reauth)]
    response = _post(
        graph_gateway,
        [
            _notification(changeType="created", resource="Users/x/Messages/unknown"),
            _notification(lifecycleEvent="missed"),
            _notification(lifecycleEvent="reauthorizationRequired"),
            _notification(changeType="deleted", resource="Users/x/Events/gone"),
        ],
    )
    assert response.status_code == 202
    assert response.json()["event_ids"] == []
    after = [_metric(graph_gateway, m) for m in (unresolved, missed, reauth)]
    assert after == [b + 1 for b in before]


def test_a_failing_fetcher_asks_graph_to_retry(graph_gateway: Served) -> None:
    graph_gateway.fetcher.fail = True
    try:
        response = _post(
            graph_gateway, [_notification(changeType="created", resource=EVENT_RESOURCE)]
        )
    finally:
        graph_gateway.fetcher.fail = False
    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"


def test_an_encrypted_rich_notification_is_decrypted_and_produced(
    graph_gateway: Served, read_topic: Callable[..., list[Record]]
) -> None:
    message = {**_example("message-get__ex1.json"), "internetMessageId": "<rich-1@test>"}
    rich = _notification(
        changeType="created",
        resource="Users/7f180cbb/Messages/rich-1",
        resourceData={"@odata.type": "#Microsoft.Graph.Message", "id": "rich-1"},
        encryptedContent=encrypt(graph_gateway.key.public_key(), message),
    )
    response = _post(graph_gateway, [rich])
    assert response.status_code == 202, response.text
    expected = email_event_id("<rich-1@test>")
    assert response.json()["event_ids"] == [expected]
    assert _events(read_topic(graph_gateway.topic, 1))[expected].client_id == "contoso"
    assert graph_gateway.fetcher.asked.count("Users/7f180cbb/Messages/rich-1") == 0


def test_an_altered_rich_notification_is_refused(
    graph_gateway: Served, read_topic: Callable[..., list[Record]]
) -> None:
    message = {**_example("message-get__ex1.json"), "internetMessageId": "<altered-1@test>"}
    content = encrypt(graph_gateway.key.public_key(), message)
    other = encrypt(graph_gateway.key.public_key(), {**message, "subject": "x"})
    content["dataSignature"] = other["dataSignature"]
    before = _metric(graph_gateway, 'shinrai_graph_refused_total{reason="signature"}')
    response = _post(
        graph_gateway,
        [
            _notification(
                changeType="created", resource="Users/x/Messages/2", encryptedContent=content
            )
        ],
    )
    assert response.status_code == 403
    assert response.json()["error"] == "invalid_signature"
    assert _metric(graph_gateway, 'shinrai_graph_refused_total{reason="signature"}') == before + 1
    produced = _events(read_topic(graph_gateway.topic, 1, timeout_s=3.0))
    assert email_event_id("<altered-1@test>") not in produced
