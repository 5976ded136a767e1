"""iCalendar parser: every real file, recurrence windows, cancellations, flags, floating times."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from producers.parsers import ics
from producers.parsers.base import Parsed, Rejected
from producers.resolution import Resolver
from schemas.directory import ClientDirectory
from schemas.events import Direction, Flag
from tests.builders import client, directory
from tests.unit.meetings._data import data_dir

pytestmark = pytest.mark.unit

EMPTY = Resolver(ClientDirectory())
START, END = datetime(2015, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
# The sweep over every real file only needs to expand every series once; two years around the
# fixtures' dates keeps it fast (a 10-year window over 95 recurring calendars takes ~45 s).
SWEEP_START, SWEEP_END = datetime(2019, 1, 1, tzinfo=UTC), datetime(2021, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("folder", "expected_files"),
    [("meetings/icalendar-testsuite", 164), ("meetings/recurring-ical-events", 95)],
)
def test_every_real_file_parses_or_is_rejected(folder: str, expected_files: int) -> None:
    paths = sorted(data_dir(folder).rglob("*.ics"))
    assert len(paths) == expected_files  # PROVENANCE.md
    parsed = rejected = 0
    for path in paths:
        for result in ics.parse(path, EMPTY, window_start=SWEEP_START, window_end=SWEEP_END):
            assert isinstance(result, Parsed | Rejected), path
            if isinstance(result, Rejected):
                rejected += 1
                assert result.raw
                assert result.reason.split(":")[0] in {
                    "calendar",
                    "VEVENT",
                    "DTSTART",
                    "DTEND",
                    "event",
                }
            else:
                parsed += 1
    assert parsed > rejected


def test_daily_series_expands_within_the_window() -> None:
    path = data_dir("meetings/recurring-ical-events") / "event_10_times.ics"
    assert "RRULE:FREQ=DAILY;COUNT=10" in path.read_text()
    everything = list(ics.parse(path, EMPTY, window_start=START, window_end=END))
    assert len(everything) == 10
    # 07:45 Berlin daily from 2020-01-13: the window 13th 00:00 .. 16th 00:00 UTC holds 3.
    window = list(
        ics.parse(
            path,
            EMPTY,
            window_start=datetime(2020, 1, 13, tzinfo=UTC),
            window_end=datetime(2020, 1, 16, tzinfo=UTC),
        )
    )
    starts = [r.event.occurred_at for r in window if isinstance(r, Parsed)]
    assert starts == [datetime(2020, 1, d, 6, 45, tzinfo=UTC) for d in (13, 14, 15)]
    assert len({r.event.event_id for r in everything if isinstance(r, Parsed)}) == 10


def test_cancelled_occurrence_is_excluded() -> None:
    path = data_dir("meetings/recurring-ical-events") / "issue_18_cancel_status.ics"
    text = path.read_text()
    assert "COUNT=3" in text
    assert "STATUS:CANCELLED" in text
    results = [
        r
        for r in ics.parse(path, EMPTY, window_start=START, window_end=END)
        if isinstance(r, Parsed)
    ]
    starts = sorted(r.event.occurred_at for r in results)
    assert starts == [datetime(2020, 1, 28, 21, tzinfo=UTC), datetime(2020, 1, 30, 21, tzinfo=UTC)]


SYNTHETIC = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//shinrai tests//EN\r
BEGIN:VEVENT\r
UID:review-1\r
DTSTAMP:20240301T080000Z\r
DTSTART:20240301T100000Z\r
DTEND:20240301T110000Z\r
ORGANIZER:mailto:ann@ours.example\r
ATTENDEE;CN=Bo:mailto:bo@acme.example\r
ATTENDEE:mailto:cy@ours.example\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:standup\r
DTSTAMP:20240301T080000Z\r
DTSTART:20240302T090000\r
DTEND:20240302T091500\r
ATTENDEE:mailto:ann@ours.example\r
ATTENDEE:mailto:cy@ours.example\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:holiday\r
DTSTAMP:20240301T080000Z\r
DTSTART;VALUE=DATE:20240304\r
DTEND;VALUE=DATE:20240305\r
END:VEVENT\r
END:VCALENDAR\r
"""


def _resolver() -> Resolver:
    acme = client("acme", name="Acme", owner="ann@ours.example", domains=("acme.example",))
    return Resolver(directory(acme, staff_domains=("ours.example",)))


def _synthetic(tmp_path: Path, **options: object) -> list[Parsed | Rejected]:
    path = tmp_path / "cal.ics"
    path.write_bytes(SYNTHETIC)
    return list(ics.parse(path, _resolver(), window_start=START, window_end=END, **options))  # type: ignore[arg-type]


def test_client_attendee_held_and_floating(tmp_path: Path) -> None:
    results = _synthetic(
        tmp_path, as_of=datetime(2024, 3, 1, 12, tzinfo=UTC), floating_tz="Asia/Tokyo"
    )
    events = {r.event.thread_key: r.event for r in results if isinstance(r, Parsed)}
    assert set(events) == {"meeting:review-1", "meeting:standup"}  # all-day skipped
    review, standup = events["meeting:review-1"], events["meeting:standup"]
    assert review.flags == {Flag.CLIENT_ATTENDEE, Flag.HELD}
    assert review.client_id == "acme"
    assert review.direction is Direction.OUTBOUND
    assert review.duration_seconds == 3600
    assert standup.direction is Direction.INTERNAL
    assert standup.flags == frozenset()  # not ended before as_of, no client
    assert standup.occurred_at == datetime(2024, 3, 2, 0, 0, tzinfo=UTC)  # 09:00 Tokyo


def test_all_day_included_on_request(tmp_path: Path) -> None:
    results = _synthetic(tmp_path, include_all_day=True, floating_tz="UTC")
    holiday = [
        r.event
        for r in results
        if isinstance(r, Parsed) and r.event.thread_key == "meeting:holiday"
    ]
    assert len(holiday) == 1
    assert holiday[0].duration_seconds == 86400


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:2024XX\r\nEND:VCALENDAR\r\n", "calendar"),
        (
            b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART:2024XX\r\nEND:VEVENT\r\n"
            b"END:VCALENDAR\r\n",
            "VEVENT",
        ),
    ],
)
def test_unreadable_input_is_rejected_not_dropped(tmp_path: Path, data: bytes, field: str) -> None:
    path = tmp_path / "broken.ics"
    path.write_bytes(data)
    results = list(ics.parse(path, EMPTY, window_start=START, window_end=END))
    assert len(results) == 1
    assert isinstance(results[0], Rejected)
    assert results[0].reason.startswith(f"{field}:")
    assert b"2024XX" in results[0].raw
