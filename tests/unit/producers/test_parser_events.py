"""The event helpers every phone and meeting parser shares: one event, or one reject naming why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from producers.parsers._common import call_event, event_result, meeting_event, read_files
from producers.parsers.base import Parsed, Rejected
from schemas.events import CallOutcome, Channel, Direction, Flag, InteractionEvent, Kind
from shinrai.errors import ShinraiError

pytestmark = pytest.mark.unit

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _call(counterpart: str | None, event_id: str = "pbx:1") -> InteractionEvent:
    return call_event(
        event_id=event_id,
        direction=Direction.INBOUND,
        start=T,
        recorded=T + timedelta(minutes=3),
        client=None,
        counterpart=counterpart,
        staff=None,
        outcome=CallOutcome.ANSWERED,
        talk=120.0,
        wait=4.0,
        source="pbx",
    )


def test_a_call_is_threaded_by_its_counterpart_number() -> None:
    event = _call("+81312345678")
    assert (event.channel, event.kind, event.thread_key) == (
        Channel.PHONE,
        Kind.CALL,
        "phone:+81312345678",
    )
    assert (event.duration_seconds, event.wait_seconds) == (120.0, 4.0)
    unknown = _call("")
    assert (unknown.thread_key, unknown.counterpart) == (None, None)


def test_a_meeting_lasts_from_start_to_end_with_its_parties() -> None:
    event = meeting_event(
        event_id="cal:1",
        parties=(Direction.OUTBOUND, "acme", "buyer@acme.example", "me@us.example"),
        start=T,
        end=T + timedelta(minutes=45),
        recorded=T,
        thread_key="meeting:1",
        flags=[Flag.HELD, Flag.HELD],
        source="cal",
    )
    assert event.duration_seconds == 45 * 60
    assert (event.client_id, event.counterpart, event.staff) == (
        "acme",
        "buyer@acme.example",
        "me@us.example",
    )
    assert event.flags == frozenset({Flag.HELD})


def test_an_event_the_model_refuses_is_rejected_with_every_bad_field() -> None:
    built: list[bytes] = []

    def raw() -> bytes:
        built.append(b"{}")
        return b"{}"

    ok = event_result("f.csv:line 2", raw, lambda: _call("+81312345678"))
    assert isinstance(ok, Parsed)
    assert ok.origin == "f.csv:line 2"
    assert built == []  # the raw bytes are only built for a reject

    refused = event_result("f.csv:line 3", raw, lambda: _call(None, event_id=""))
    assert isinstance(refused, Rejected)
    assert refused.reason.startswith("event: event_id: ")
    assert (refused.origin, refused.raw) == ("f.csv:line 3", b"{}")


def test_read_files_yields_each_file_once_and_names_an_unreadable_one(tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_bytes(b"2")
    (tmp_path / "a.CSV").write_bytes(b"1")
    (tmp_path / "skip.txt").write_bytes(b"x")
    assert [(p.name, data) for p, data in read_files(tmp_path, (".csv",))] == [
        ("a.CSV", b"1"),
        ("b.csv", b"2"),
    ]
    missing = tmp_path / "gone.csv"
    with pytest.raises(ShinraiError, match=r"cannot read .*gone\.csv"):
        list(read_files(missing, (".csv",)))
