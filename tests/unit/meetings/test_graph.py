"""Microsoft Graph event JSON: documentation examples and synthetic cancellations."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from producers.parsers import graph
from producers.parsers.base import Parsed, Rejected
from producers.resolution import Resolver
from schemas.directory import Client, ClientDirectory
from schemas.events import Flag
from tests.unit.meetings._data import data_dir

pytestmark = pytest.mark.unit

EMPTY = Resolver(ClientDirectory())


def _items(doc: Any) -> list[Any]:
    return doc["value"] if isinstance(doc, dict) and isinstance(doc.get("value"), list) else [doc]


def test_every_example_file() -> None:
    folder = data_dir("meetings/msgraph-examples")
    paths = sorted(folder.glob("*.json"))
    assert len(paths) == 19  # PROVENANCE.md: 19 files
    items = [item for p in paths for item in _items(json.loads(p.read_bytes()))]
    events_expected = sum(
        isinstance(i.get("start"), dict) and not i.get("isCancelled") for i in items
    )
    results = list(graph.parse(folder, EMPTY, as_of=datetime(2021, 7, 16, tzinfo=UTC)))
    assert len(results) == len(items)
    assert sum(isinstance(r, Parsed) for r in results) == events_expected
    assert all(r.reason.startswith("start:") for r in results if isinstance(r, Rejected))


def test_windows_zone_names_are_converted() -> None:
    path = data_dir("meetings/msgraph-examples") / "event-get__ex1.json"
    doc = json.loads(path.read_text())
    assert doc["start"]["timeZone"] == "Pacific Standard Time"
    local = datetime.fromisoformat(doc["start"]["dateTime"][:19])
    expected = local.replace(tzinfo=ZoneInfo("America/Los_Angeles")).astimezone(UTC)
    (result,) = graph.parse(path, EMPTY)
    assert isinstance(result, Parsed)
    assert result.event.occurred_at == expected


def _event(**extra: object) -> dict[str, object]:
    return {
        "id": "AAA1",
        "start": {"dateTime": "2024-03-01T10:00:00.0000000", "timeZone": "Tokyo Standard Time"},
        "end": {"dateTime": "2024-03-01T11:00:00.0000000", "timeZone": "Tokyo Standard Time"},
        "organizer": {"emailAddress": {"address": "ann@ours.example"}},
        "attendees": [{"emailAddress": {"address": "bo@acme.example"}}],
        **extra,
    }


def test_cancelled_excluded_client_and_held(tmp_path: Path) -> None:
    page = {"value": [_event(), _event(id="AAA2", isCancelled=True), _event(id="AAA3", start={})]}
    path = tmp_path / "events.json"
    path.write_bytes(json.dumps(page).encode())
    resolver = Resolver(
        ClientDirectory(
            clients=(
                Client(
                    client_id="acme", name="Acme", owner="o@ours.example", domains=("acme.example",)
                ),
            )
        )
    )
    results = list(graph.parse(path, resolver, as_of=datetime(2024, 3, 1, 2, tzinfo=UTC)))
    assert [type(r) for r in results] == [Parsed, Rejected]
    event = results[0].event  # type: ignore[union-attr]
    assert event.occurred_at == datetime(2024, 3, 1, 1, tzinfo=UTC)  # 10:00 JST
    assert event.flags == {Flag.CLIENT_ATTENDEE, Flag.HELD}
    assert event.client_id == "acme"
    assert isinstance(results[1], Rejected)
    assert json.loads(results[1].raw)["id"] == "AAA3"
