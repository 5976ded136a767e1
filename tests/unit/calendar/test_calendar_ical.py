"""iCal holiday feeds: engine.calendar.load_ical_holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import holidays
import icalendar
import pytest

from engine.calendar import CalendarClock, load_ical_holidays
from schemas.calendars import BusinessCalendar
from shinrai.errors import ValidationFailed
from tests.shared_data import require

pytestmark = pytest.mark.unit

SHARED_DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
FEEDS = SHARED_DATA / "meetings" / "recurring-ical-events"

BASE = BusinessCalendar(
    calendar_id="de",
    timezone="Europe/Berlin",
    extra_holidays=frozenset({date(2026, 12, 31)}),
    ical_feeds=("earlier-feed",),
)


def event(summary: str, **props: object) -> icalendar.Event:
    ev = icalendar.Event()
    ev.add("summary", summary)
    ev.add("uid", f"{summary}@test")
    for name, value in props.items():
        ev.add(name.replace("_", "-"), value)
    return ev


def feed(*events: icalendar.Event) -> bytes:
    cal = icalendar.Calendar()
    cal.add("prodid", "-//shinrai tests//")
    cal.add("version", "2.0")
    for ev in events:
        cal.add_component(ev)
    return bytes(cal.to_ical())


class TestBuiltFeed:
    ics = feed(
        event("Single day", dtstart=date(2026, 1, 2), dtend=date(2026, 1, 3)),
        event("Three days", dtstart=date(2026, 8, 12), dtend=date(2026, 8, 15)),
        event("No end", dtstart=date(2026, 3, 3)),
        event("By duration", dtstart=date(2026, 4, 6), duration=timedelta(days=2)),
        event(
            "Yearly founders day",
            dtstart=date(2026, 7, 7),
            dtend=date(2026, 7, 8),
            rrule={"FREQ": "YEARLY", "COUNT": 3},
            exdate=date(2027, 7, 7),
        ),
        event(
            "A timed meeting is not a holiday",
            dtstart=datetime(2026, 5, 5, 9, tzinfo=UTC),
            dtend=datetime(2026, 5, 5, 10, tzinfo=UTC),
        ),
        event(
            "Cancelled closure",
            dtstart=date(2026, 6, 1),
            dtend=date(2026, 6, 2),
            status="CANCELLED",
        ),
    )

    def test_all_day_events_become_extra_holidays(self) -> None:
        loaded = load_ical_holidays(BASE, self.ics, "built-in-test")
        assert loaded.extra_holidays == {
            date(2026, 12, 31),  # kept from before
            date(2026, 1, 2),
            date(2026, 8, 12),
            date(2026, 8, 13),
            date(2026, 8, 14),  # DTEND is exclusive
            date(2026, 3, 3),
            date(2026, 4, 6),
            date(2026, 4, 7),
            date(2026, 7, 7),
            date(2028, 7, 7),  # 2027 is excluded by EXDATE
        }
        assert loaded.ical_feeds == ("earlier-feed", "built-in-test")

    def test_input_calendar_is_unchanged_and_clock_uses_the_feed(self) -> None:
        loaded = load_ical_holidays(BASE, self.ics, "built-in-test")
        assert BASE.extra_holidays == {date(2026, 12, 31)}
        assert CalendarClock(BASE).is_business_day(date(2026, 8, 13))
        assert not CalendarClock(loaded).is_business_day(date(2026, 8, 13))

    def test_year_range_limits_recurrences(self) -> None:
        endless = feed(
            event(
                "Yearly",
                dtstart=date(2026, 7, 7),
                dtend=date(2026, 7, 8),
                rrule={"FREQ": "YEARLY"},
            )
        )
        loaded = load_ical_holidays(BASE, endless, "endless", years=(2027, 2029))
        assert loaded.extra_holidays - BASE.extra_holidays == {
            date(2027, 7, 7),
            date(2028, 7, 7),
            date(2029, 7, 7),
        }
        default_range = load_ical_holidays(BASE, endless, "endless")
        years = sorted(d.year for d in default_range.extra_holidays - BASE.extra_holidays)
        assert years == list(range(2026, 2037))  # feed's year to ten years after

    def test_garbage_is_a_validation_error(self) -> None:
        with pytest.raises(ValidationFailed) as info:
            load_ical_holidays(BASE, b"this is not a calendar", "junk")
        assert info.value.raw == b"this is not a calendar"
        assert "junk" in str(info.value)


def _shared_feed(name: str) -> bytes:
    path = FEEDS / name
    require(path.is_file(), f"shared data folder {FEEDS} (file {name}) is missing")
    return path.read_bytes()


class TestSharedGermanyFeed:
    """officeholidays.com German holiday feed from the recurring-ical-events test suite."""

    def test_feed_covers_every_national_holiday_2008_2020(self) -> None:
        loaded = load_ical_holidays(BASE, _shared_feed("Germany.ics"), "Germany.ics")
        added = loaded.extra_holidays - BASE.extra_holidays
        assert min(added) == date(2008, 1, 1)
        assert max(added) == date(2020, 12, 26)
        # Cross-check against an independent source: the holidays package's national days.
        national = set(holidays.country_holidays("DE", years=range(2008, 2021)))
        assert national <= added
        # The feed also lists regional days (e.g. Epiphany in Bavaria), never fewer than 10 a year.
        per_year = {y: sum(1 for d in added if d.year == y) for y in range(2008, 2021)}
        assert min(per_year.values()) >= 10

    def test_zero_length_all_day_events_count_one_day(self) -> None:
        # Germany_Holidays.ics writes DTEND equal to DTSTART (and an empty RRULE).
        loaded = load_ical_holidays(BASE, _shared_feed("Germany_Holidays.ics"), "gh")
        added = loaded.extra_holidays - BASE.extra_holidays
        assert {date(2019, 1, 1), date(2019, 4, 19), date(2019, 10, 3)} <= added
        clock = CalendarClock(loaded)
        assert not clock.is_business_day(date(2019, 10, 3))  # German Unity Day, a Thursday
        assert clock.is_business_day(date(2019, 10, 4))
