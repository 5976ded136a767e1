"""The business-time line (prefix sums over open pieces) answers exactly like the day walk.

``CalendarClock`` answers ``add_business`` and ``business_seconds_between`` from a line of
prefix sums that grows on demand (forwards, backwards, and not at all for a query more than
``_LINE_MAX_GAP_DAYS`` away, which walks day by day). Here one long-lived clock takes queries in
a random order spread over years, and every answer must equal the walk's (the line switched off).
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

import pytest

from engine.calendar import CalendarClock
from schemas.calendars import BusinessCalendar, TimeInterval

pytestmark = pytest.mark.unit

SPLIT = (TimeInterval(start=time(9), end=time(12)), TimeInterval(start=time(13), end=time(18)))
CALENDARS = [
    BusinessCalendar(calendar_id="utc", timezone="UTC"),
    BusinessCalendar(
        calendar_id="ny",
        timezone="America/New_York",
        weekly_hours={d: SPLIT for d in range(5)},
        holiday_country="US",
        holiday_subdivision="NY",
        extra_business_days=frozenset({date(2026, 3, 7)}),
    ),
    BusinessCalendar(calendar_id="jp", timezone="Asia/Tokyo", holiday_country="JP"),
    BusinessCalendar(
        calendar_id="night",
        timezone="Europe/Berlin",
        weekly_hours={d: (TimeInterval(start=time(0), end=time(3)),) for d in range(7)},
    ),
]


def _queries(rng: random.Random) -> list[tuple[datetime, float, datetime]]:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for _ in range(300):
        # Mostly near each other, some years away (forces backward growth and the walk).
        spread = rng.choice([30, 30, 30, 400, 3000])
        t = base + timedelta(seconds=rng.uniform(-spread, spread) * 86400)
        span = rng.choice([0.0, 1.0, 3600.0, rng.uniform(0, 40 * 3600), rng.uniform(0, 2e6)])
        out.append((t, span, t + timedelta(seconds=rng.uniform(0, 30 * 86400))))
    return out


@pytest.mark.parametrize("calendar", CALENDARS, ids=lambda c: c.calendar_id)
def test_line_matches_day_walk(calendar: BusinessCalendar, monkeypatch: pytest.MonkeyPatch) -> None:
    queries = _queries(random.Random(calendar.calendar_id))
    clock = CalendarClock(calendar)
    fast = [
        (clock.add_business(t, span), clock.business_seconds_between(t, end))
        for t, span, end in queries
    ]
    monkeypatch.setattr(CalendarClock, "_line", lambda self, lo, hi: False)
    walk = CalendarClock(calendar)
    slow = [
        (walk.add_business(t, span), walk.business_seconds_between(t, end))
        for t, span, end in queries
    ]
    assert fast == slow


def test_line_at_the_ends_of_the_datetime_range(monkeypatch: pytest.MonkeyPatch) -> None:
    calendar = BusinessCalendar(calendar_id="jp", timezone="Asia/Tokyo")
    queries = [
        (datetime(9999, 12, 20, tzinfo=UTC), datetime(9999, 12, 28, tzinfo=UTC)),
        (datetime(1, 1, 2, tzinfo=UTC), datetime(1, 1, 9, tzinfo=UTC)),
    ]
    clock = CalendarClock(calendar)
    fast = [(clock.add_business(a, 3600), clock.business_seconds_between(a, b)) for a, b in queries]
    monkeypatch.setattr(CalendarClock, "_line", lambda self, lo, hi: False)
    walk = CalendarClock(calendar)
    assert fast == [
        (walk.add_business(a, 3600), walk.business_seconds_between(a, b)) for a, b in queries
    ]
