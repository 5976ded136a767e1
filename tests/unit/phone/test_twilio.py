"""Twilio Call JSON parser: vendor examples and synthetic statuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from producers.parsers import twilio
from producers.parsers.base import Parsed, Rejected
from producers.resolution import Resolver
from schemas.directory import ClientDirectory
from schemas.events import CallOutcome, Direction
from tests.builders import client, directory
from tests.unit.phone._data import data_dir

pytestmark = pytest.mark.unit

EMPTY = Resolver(ClientDirectory())
ACME = Resolver(
    directory(client("acme", name="Acme", owner="o@example.com", phone_numbers=("+14155550100",)))
)


def test_every_example_file_parses_or_is_rejected() -> None:
    folder = data_dir("phone/twilio-examples")
    paths = sorted(p for p in folder.iterdir() if p.name != "PROVENANCE.md")
    assert len(paths) == 9  # PROVENANCE.md: 9 files
    for path in paths:
        results = list(twilio.parse(path, EMPTY))
        assert results, path.name
        if path.name == "call__instance-get-example-1.json":
            assert [type(r) for r in results] == [Parsed]
        else:  # conference/queue/recording resources, and *.json.txt with a literal "..."
            assert all(isinstance(r, Rejected) and r.raw == path.read_bytes() for r in results)


def test_call_instance_fields() -> None:
    path = data_dir("phone/twilio-examples") / "call__instance-get-example-1.json"
    doc = json.loads(path.read_text())
    (result,) = twilio.parse(path, EMPTY)
    assert isinstance(result, Parsed)
    event = result.event
    assert event.event_id == f"twilio:{doc['sid']}"
    assert event.call_outcome is CallOutcome.ANSWERED
    assert event.duration_seconds == float(doc["duration"])
    assert event.counterpart == doc["to"]  # outbound-api: "to" is the other party
    assert event.direction is Direction.UNKNOWN  # the number belongs to no known client


def _call(sid: str, status: str, direction: str, **extra: object) -> dict[str, object]:
    inbound = direction == "inbound"
    return {
        "sid": sid,
        "status": status,
        "direction": direction,
        "from": "+14155550100" if inbound else "+14155550199",
        "to": "+14155550199" if inbound else "+14155550100",
        "start_time": "Fri, 01 Mar 2024 09:00:00 +0000",
        "end_time": "Fri, 01 Mar 2024 09:00:25 +0000",
        "duration": "25",
        **extra,
    }


def test_list_page_statuses_direction_and_wait(tmp_path: Path) -> None:
    page = {
        "calls": [
            _call("CA1", "completed", "inbound", queue_time="4000"),
            _call("CA2", "no-answer", "inbound"),
            _call("CA3", "canceled", "inbound"),
            _call("CA4", "busy", "outbound-dial"),
            _call("CA5", "in-progress", "inbound"),
            _call("CA6", "completed", "inbound", start_time="someday"),
        ]
    }
    path = tmp_path / "calls.json"
    path.write_bytes(json.dumps(page).encode())
    results = list(twilio.parse(path, ACME))
    events = {r.event.event_id: r.event for r in results if isinstance(r, Parsed)}
    assert events["twilio:CA1"].wait_seconds == 4.0  # queue_time is in milliseconds
    assert events["twilio:CA1"].direction is Direction.INBOUND
    assert events["twilio:CA1"].client_id == "acme"
    assert events["twilio:CA2"].call_outcome is CallOutcome.MISSED
    assert events["twilio:CA2"].wait_seconds == 25.0
    assert events["twilio:CA3"].call_outcome is CallOutcome.ABANDONED
    assert events["twilio:CA4"].call_outcome is CallOutcome.BUSY
    assert events["twilio:CA4"].direction is Direction.OUTBOUND
    inbound = [e for e in events.values() if e.direction is Direction.INBOUND]
    assert all(e.wait_seconds is not None for e in inbound)
    rejected = [r for r in results if isinstance(r, Rejected)]
    assert sorted(r.reason.split(":")[0] for r in rejected) == ["start_time", "status"]
    assert all(json.loads(r.raw)["sid"] in {"CA5", "CA6"} for r in rejected)
