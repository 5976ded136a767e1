"""Zoom webhook batches: the real captured sequence in every arrival order."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from producers.parsers import zoom
from producers.parsers.base import Parsed, Rejected
from producers.resolution import Resolver
from schemas.directory import Client, ClientDirectory
from schemas.events import Flag
from tests.unit.meetings._data import data_dir

pytestmark = pytest.mark.unit

EMPTY = Resolver(ClientDirectory())


def _payloads() -> list[dict[str, Any]]:
    path = data_dir("meetings/zoom-capture") / "zoom_webhook_sequence_2022-03-23.json"
    payloads: list[dict[str, Any]] = json.loads(path.read_text())
    assert [p["event"] for p in payloads] == [  # PROVENANCE.md: delivery order
        "meeting.started",
        "meeting.participant_joined",
        "meeting.ended",
        "meeting.participant_left",
    ]
    return payloads


def test_file_gives_one_held_meeting() -> None:
    folder = data_dir("meetings/zoom-capture")
    results = list(zoom.parse(folder, EMPTY))
    assert len(results) == 1
    assert isinstance(results[0], Parsed)
    event = results[0].event
    payloads = _payloads()
    assert event.event_id == f"zoom:{payloads[0]['payload']['object']['uuid']}"
    assert Flag.HELD in event.flags
    assert event.duration_seconds == 13.0  # 12:33:26Z .. 12:33:39Z (ended payload)


def test_same_result_for_every_arrival_order() -> None:
    payloads = _payloads()
    expected = list(zoom.from_webhooks(payloads, EMPTY))
    for order in itertools.permutations(payloads):
        got = list(zoom.from_webhooks(list(order), EMPTY))
        assert [r.event for r in got if isinstance(r, Parsed)] == [
            r.event for r in expected if isinstance(r, Parsed)
        ]


def test_participant_resolves_to_client() -> None:
    payloads = _payloads()
    email = payloads[1]["payload"]["object"]["participant"]["email"]
    resolver = Resolver(
        ClientDirectory(
            clients=(
                Client(client_id="jan", name="Jan", owner="o@example.com", addresses=(email,)),
            )
        )
    )
    (result,) = zoom.from_webhooks([json.dumps(p).encode() for p in reversed(payloads)], resolver)
    assert isinstance(result, Parsed)
    assert result.event.client_id == "jan"
    assert result.event.flags == {Flag.HELD, Flag.CLIENT_ATTENDEE}


def test_not_ended_means_no_event_and_bad_payloads_are_rejected() -> None:
    payloads = [p for p in _payloads() if p["event"] != "meeting.ended"]
    bad = [b"{not json", json.dumps({"event": "meeting.started", "payload": {}}).encode()]
    results = list(zoom.from_webhooks([*payloads, *bad], EMPTY))
    assert all(isinstance(r, Rejected) for r in results)
    assert [r.raw for r in results if isinstance(r, Rejected)] == bad
    assert [r.reason.split(":")[0] for r in results if isinstance(r, Rejected)] == [
        "json",
        "payload.object",
    ]
