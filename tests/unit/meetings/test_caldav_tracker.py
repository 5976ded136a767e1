"""The calendar follower's decisions (no server): what is published, when, and what cancels it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from producers.connectors.caldav import CalendarTracker, Changes, Resource
from producers.parsers import ics
from producers.parsers.base import Parsed, Rejected
from producers.resolution import Resolver
from schemas.events import Flag
from tests.builders import client, directory

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _resolver() -> Resolver:
    acme = client("acme", name="Acme", owner="ann@ours.example", domains=("acme.example",))
    return Resolver(directory(acme, staff_domains=("ours.example",)))


def _stamp(at: datetime) -> str:
    return at.strftime("%Y%m%dT%H%M%SZ")


def vevent(
    uid: str,
    start: datetime,
    *,
    minutes: int = 60,
    attendees: tuple[str, ...] = ("bob@acme.example",),
    extra: str = "",
) -> str:
    """One VEVENT (CRLF lines) organised by ann@ours.example."""
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20260301T080000Z",
        f"DTSTART:{_stamp(start)}",
        f"DTEND:{_stamp(start + timedelta(minutes=minutes))}",
        "SUMMARY:Review",
        "ORGANIZER:mailto:ann@ours.example",
        *(f"ATTENDEE:mailto:{a}" for a in attendees),
        *([extra] if extra else []),
        "END:VEVENT",
    ]
    return "\r\n".join(lines) + "\r\n"


def vcalendar(*events: str) -> bytes:
    """A VCALENDAR around ``events``."""
    head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//shinrai tests//EN\r\n"
    return (head + "".join(events) + "END:VCALENDAR\r\n").encode()


def _changed(**resources: bytes) -> Changes:
    return Changes(
        changed={href: Resource(f"etag-{hash(data)}", data) for href, data in resources.items()},
        mode="sync-token",
    )


def _apply(tracker: CalendarTracker, changes: Changes, now: datetime) -> list[Parsed | Rejected]:
    plan = tracker.plan(changes, now)
    tracker.commit(plan)
    return plan.results


def _parsed(results: list[Parsed | Rejected]) -> list[Parsed]:
    return [r for r in results if isinstance(r, Parsed)]


def test_a_held_client_meeting_is_published_once() -> None:
    tracker = CalendarTracker("ann", _resolver())
    data = vcalendar(vevent("m1", NOW - timedelta(hours=3)))
    first = _parsed(_apply(tracker, _changed(a=data), NOW))
    assert len(first) == 1
    event = first[0].event
    assert {Flag.HELD, Flag.CLIENT_ATTENDEE} <= event.flags
    assert event.client_id == "acme"
    assert event.event_id == f"ics:m1@{(NOW - timedelta(hours=3)).isoformat()}"
    assert _apply(tracker, Changes(), NOW + timedelta(minutes=5)) == []


def test_a_future_meeting_is_published_when_it_has_ended() -> None:
    tracker = CalendarTracker("ann", _resolver())
    start = NOW + timedelta(hours=1)
    assert _apply(tracker, _changed(a=vcalendar(vevent("m2", start))), NOW) == []
    assert _apply(tracker, Changes(), start + timedelta(minutes=30)) == []  # still running
    later = _parsed(_apply(tracker, Changes(), start + timedelta(minutes=61)))
    assert [p.event.occurred_at for p in later] == [start]


def test_internal_meetings_are_not_published() -> None:
    tracker = CalendarTracker("ann", _resolver())
    data = vcalendar(vevent("m3", NOW - timedelta(hours=2), attendees=("cy@ours.example",)))
    assert _apply(tracker, _changed(a=data), NOW) == []


def _published_then(change: Changes) -> list[Parsed]:
    tracker = CalendarTracker("ann", _resolver())
    start = NOW - timedelta(hours=4)
    _apply(tracker, _changed(a=vcalendar(vevent("m4", start))), NOW)
    return _parsed(_apply(tracker, change, NOW + timedelta(minutes=1)))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            _changed(a=vcalendar(vevent("m4", NOW - timedelta(hours=4), extra="STATUS:CANCELLED"))),
            id="status-cancelled",
        ),
        pytest.param(Changes(deleted=frozenset({"a"})), id="deleted"),
        pytest.param(Changes(present=frozenset({"other"})), id="missing-from-listing"),
    ],
)
def test_a_published_meeting_that_disappears_gets_a_cancellation_notice(change: Changes) -> None:
    [notice] = _published_then(change)
    start = NOW - timedelta(hours=4)
    assert notice.event.event_id == f"ics-cancel:ics:m4@{start.isoformat()}"
    assert Flag.CANCELLED in notice.event.flags
    assert Flag.HELD not in notice.event.flags
    assert notice.event.occurred_at == start
    assert notice.event.recorded_at == NOW + timedelta(minutes=1)


def test_a_moved_meeting_cancels_the_old_slot_and_publishes_the_new_one() -> None:
    tracker = CalendarTracker("ann", _resolver())
    old, new = NOW - timedelta(hours=5), NOW - timedelta(hours=2)
    _apply(tracker, _changed(a=vcalendar(vevent("m5", old))), NOW)
    results = _parsed(_apply(tracker, _changed(a=vcalendar(vevent("m5", new))), NOW))
    by_flag = {Flag.CANCELLED in r.event.flags: r.event for r in results}
    assert by_flag[True].occurred_at == old
    assert by_flag[False].occurred_at == new
    assert by_flag[False].event_id == f"ics:m5@{new.isoformat()}"


def test_recurrences_match_the_ics_importer() -> None:
    weekly = vevent("w1", NOW - timedelta(weeks=6, hours=1), extra="RRULE:FREQ=WEEKLY")
    data = vcalendar(weekly)
    tracker = CalendarTracker("ann", _resolver(), history=timedelta(days=30))
    published = {r.event.event_id for r in _parsed(_apply(tracker, _changed(a=data), NOW))}
    expected = {
        r.event.event_id
        for r in ics.parse_bytes(
            data,
            _resolver(),
            name="a",
            window_start=NOW - timedelta(days=30),
            window_end=NOW,
            as_of=NOW,
        )
        if isinstance(r, Parsed) and Flag.HELD in r.event.flags
    }
    assert published == expected
    assert len(published) == 5  # weekly occurrences that ended in the last 30 days


def test_a_restart_from_the_checkpoint_publishes_nothing_twice() -> None:
    data = vcalendar(vevent("m6", NOW - timedelta(hours=3)), vevent("m7", NOW + timedelta(hours=1)))
    tracker = CalendarTracker("ann", _resolver())
    assert len(_apply(tracker, Changes(changed={"a": Resource("1", data)}), NOW)) == 1
    resumed = CalendarTracker.from_state("ann", _resolver(), tracker.state_json())
    later = NOW + timedelta(hours=3)
    results = _parsed(
        _apply(resumed, Changes({"a": Resource("1", data)}, present=frozenset({"a"})), later)
    )
    assert [r.event.event_id for r in results] == [
        f"ics:m7@{(NOW + timedelta(hours=1)).isoformat()}"
    ]


def test_an_unusable_resource_is_rejected_once_per_version() -> None:
    tracker = CalendarTracker("ann", _resolver())
    broken = vcalendar(vevent("m8", NOW - timedelta(hours=1)).replace("DTSTART:", "X-DTSTART:"))
    [rejected] = _apply(tracker, _changed(a=broken), NOW)
    assert isinstance(rejected, Rejected)
    assert "DTSTART" in rejected.reason
    assert _apply(tracker, Changes(), NOW + timedelta(minutes=1)) == []


def test_a_retimed_recurring_instance_is_counted_not_republished() -> None:
    series_start = NOW - timedelta(days=2, hours=1)
    master = vevent("w2", series_start, extra="RRULE:FREQ=DAILY;COUNT=2")
    tracker = CalendarTracker("ann", _resolver())
    assert len(_apply(tracker, _changed(a=vcalendar(master)), NOW)) == 2
    moved = vevent(
        "w2",
        series_start + timedelta(days=1, hours=2),
        extra=f"RECURRENCE-ID:{_stamp(series_start + timedelta(days=1))}",
    )
    plan = tracker.plan(_changed(a=vcalendar(master, moved)), NOW)
    assert plan.results == []
    assert plan.unrepresentable == 1


def test_an_unreadable_checkpoint_starts_afresh() -> None:
    tracker = CalendarTracker.from_state("ann", _resolver(), "{not json")
    assert tracker.published == {}
