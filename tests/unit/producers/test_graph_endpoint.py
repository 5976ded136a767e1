"""The Graph notifications endpoint's refusals and log lines (TestClient, in-memory publisher).

The produce path into the real broker is tests/integration/producers/test_graph_gateway.py.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import orjson
import pytest
import structlog
from pydantic import SecretStr
from starlette.exceptions import StarletteDeprecationWarning
from structlog.testing import capture_logs

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

from producers.gateway import graph as graph_module
from producers.gateway.app import create_app
from producers.gateway.settings import GatewaySettings
from shinrai.settings import Settings
from tests.unit.producers.test_gateway_requests import MemoryPublisher

pytestmark = pytest.mark.unit

STATE = "unit-client-state"
URL = "/v1/graph/notifications"


@pytest.fixture(autouse=True)
def _uncached_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """A logger another test already used is cached past ``capture_logs``: a fresh one."""
    monkeypatch.setattr(graph_module, "log", structlog.get_logger("producers.gateway"))


@pytest.fixture
def publisher() -> MemoryPublisher:
    return MemoryPublisher()


@pytest.fixture
def graph(publisher: MemoryPublisher) -> Iterator[TestClient]:
    gateway = GatewaySettings(graph_client_state=SecretStr(STATE))
    app = create_app(Settings(), gateway, publisher_factory=lambda: publisher)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _body(*notifications: dict[str, object]) -> bytes:
    return orjson.dumps({"value": list(notifications)})


def test_without_a_client_state_the_endpoint_is_not_configured(publisher: MemoryPublisher) -> None:
    app = create_app(Settings(), GatewaySettings(), publisher_factory=lambda: publisher)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post(URL, params={"validationToken": "x"})
    assert response.status_code == 503
    assert "Graph clientState" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid_json"),
        (b'{"value": {}}', "invalid_payload"),
        (b'{"value": [1]}', "invalid_payload"),
    ],
)
def test_malformed_bodies_are_400(graph: TestClient, body: bytes, code: str) -> None:
    response = graph.post(URL, content=body)
    assert response.status_code == 400
    assert response.json()["error"] == code


def test_lifecycle_events_are_logged_with_what_to_do(graph: TestClient) -> None:
    with capture_logs() as logs:
        response = graph.post(
            URL,
            content=_body(
                {"clientState": STATE, "subscriptionId": "s-1", "lifecycleEvent": "missed"},
                {"clientState": STATE, "subscriptionId": "s-1", "lifecycleEvent": "odd"},
            ),
        )
    assert response.status_code == 202
    lines = [e for e in logs if e["event"] == "graph subscription lifecycle event"]
    assert [(e["lifecycle_event"], e["log_level"]) for e in lines] == [
        ("missed", "warning"),
        ("odd", "warning"),
    ]
    assert "re-sync" in lines[0]["action"]
    assert lines[0]["subscription"] == "s-1"


def test_a_refused_request_logs_no_secret_and_publishes_nothing(
    graph: TestClient, publisher: MemoryPublisher
) -> None:
    with capture_logs() as logs:
        response = graph.post(
            URL,
            content=_body({"clientState": "a-guess", "changeType": "created", "resource": "x"}),
        )
    assert response.status_code == 403
    assert publisher.records == []
    text = repr(logs)
    assert "refused: wrong clientState" in text
    assert STATE not in text
    assert "a-guess" not in text


def test_an_event_not_yet_held_is_not_produced(
    graph: TestClient, publisher: MemoryPublisher
) -> None:
    future = {
        "@odata.type": "#Microsoft.Graph.Event",
        "id": "AAMk-future",
        "iCalUId": "0400-future",
        "start": {"dateTime": "2099-01-01T10:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2099-01-01T11:00:00", "timeZone": "UTC"},
        "attendees": [{"emailAddress": {"address": "bob@acme.example"}}],
    }
    response = graph.post(
        URL,
        content=_body(
            {
                "clientState": STATE,
                "changeType": "created",
                "resource": "u/events/1",
                "resourceData": future,
            }
        ),
    )
    assert response.status_code == 202
    assert response.json()["event_ids"] == []
    assert publisher.records == []
    metrics = graph.get("/metrics").text
    assert 'shinrai_graph_notifications_total{kind="event",outcome="not_held"} 1.0' in metrics
