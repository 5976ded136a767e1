"""Scenario tests of engine.calendar.CalendarClock: hours, holidays, weekends, 24x7, DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from engine.calendar import CalendarClock, clock_for
from schemas.calendars import BusinessCalendar, TimeInterval
from shinrai.errors import EngineError

pytestmark = pytest.mark.unit

TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
HOUR = 3600.0


def iv(start: str, end: str | None) -> TimeInterval:
    """A TimeInterval from "HH:MM" strings (end None = midnight)."""
    return TimeInterval(
        start=time.fromisoformat(start), end=None if end is None else time.fromisoformat(end)
    )


def make_clock(zone: str = "Asia/Tokyo", **fields: object) -> CalendarClock:
    """A fresh (unshared) clock for a calendar built from ``fields``."""
    return CalendarClock(BusinessCalendar(calendar_id="test", timezone=zone, **fields))  # type: ignore[arg-type]


def local(zone: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    """A local wall-clock time, returned in UTC.

    In UTC because Python never treats a time in a repeated (fall-back) hour as equal to one in
    another zone (PEP 495), so expectations are compared as UTC instants.
    """
    return datetime(*args, tzinfo=zone, fold=fold).astimezone(UTC)  # type: ignore[misc]


SPLIT = {d: (iv("09:00", "12:00"), iv("13:00", "18:00")) for d in range(5)}
NIGHT = {d: (iv("00:00", "06:00"),) for d in range(7)}


class TestSplitShift:
    """09:00-12:00 and 13:00-18:00 Monday to Friday, Asia/Tokyo, no public holidays."""

    clock = make_clock(weekly_hours=SPLIT)

    def test_intervals_are_utc_and_ascending(self) -> None:
        # 2026-06-01 is a Monday; Tokyo is UTC+9 all year.
        got = self.clock.intervals_on(date(2026, 6, 1))
        assert got == (
            (datetime(2026, 6, 1, 0, tzinfo=UTC), datetime(2026, 6, 1, 3, tzinfo=UTC)),
            (datetime(2026, 6, 1, 4, tzinfo=UTC), datetime(2026, 6, 1, 9, tzinfo=UTC)),
        )
        assert all(a.tzinfo is UTC and b.tzinfo is UTC for a, b in got)
        assert self.clock.intervals_on(date(2026, 6, 1)) is got  # cached

    def test_lunch_is_skipped(self) -> None:
        start = local(TOKYO, 2026, 6, 1, 11)
        assert self.clock.add_business(start, 2 * HOUR) == local(TOKYO, 2026, 6, 1, 14)
        assert self.clock.business_seconds_between(
            local(TOKYO, 2026, 6, 1, 11, 30), local(TOKYO, 2026, 6, 1, 13, 30)
        ) == pytest.approx(HOUR)

    def test_span_ending_at_closing_returns_closing(self) -> None:
        start = local(TOKYO, 2026, 6, 1, 11)
        assert self.clock.add_business(start, HOUR) == local(TOKYO, 2026, 6, 1, 12)
        assert self.clock.add_business(start, HOUR + 1) == local(TOKYO, 2026, 6, 1, 13, 0, 1)

    def test_start_during_lunch_or_before_opening(self) -> None:
        assert self.clock.add_business(local(TOKYO, 2026, 6, 1, 12, 30), 60) == local(
            TOKYO, 2026, 6, 1, 13, 1
        )
        assert self.clock.add_business(local(TOKYO, 2026, 6, 1, 6), 60) == local(
            TOKYO, 2026, 6, 1, 9, 1
        )

    def test_is_open(self) -> None:
        assert self.clock.is_open(local(TOKYO, 2026, 6, 1, 9))
        assert not self.clock.is_open(local(TOKYO, 2026, 6, 1, 12))  # end is exclusive
        assert not self.clock.is_open(local(TOKYO, 2026, 6, 1, 12, 59, 59))
        assert self.clock.is_open(local(TOKYO, 2026, 6, 1, 13))
        assert not self.clock.is_open(local(TOKYO, 2026, 6, 6, 10))  # Saturday

    def test_weekend_is_skipped(self) -> None:
        # Friday 2026-06-05 17:00 + 2 h -> 1 h on Friday, 1 h on Monday 2026-06-08.
        assert self.clock.add_business(local(TOKYO, 2026, 6, 5, 17), 2 * HOUR) == local(
            TOKYO, 2026, 6, 8, 10
        )
        assert not self.clock.is_business_day(date(2026, 6, 6))
        assert not self.clock.is_business_day(date(2026, 6, 7))
        week = self.clock.business_seconds_between(
            local(TOKYO, 2026, 6, 1), local(TOKYO, 2026, 6, 8)
        )
        assert week == 5 * 8 * HOUR

    def test_zero_and_empty_spans(self) -> None:
        t = local(TOKYO, 2026, 6, 6, 3)  # closed (Saturday night)
        assert self.clock.add_business(t, 0) == t
        assert self.clock.business_seconds_between(t, t) == 0.0
        assert self.clock.business_seconds_between(t + timedelta(days=3), t) == 0.0

    def test_end_of_business_day(self) -> None:
        monday_evening = local(TOKYO, 2026, 6, 1, 20)
        assert self.clock.end_of_business_day(monday_evening) == local(TOKYO, 2026, 6, 1, 18)
        assert self.clock.end_of_business_day(local(TOKYO, 2026, 6, 6, 10)) is None

    def test_next_business_day_at_is_strictly_after_local_date(self) -> None:
        early_monday = local(TOKYO, 2026, 6, 1, 5)
        assert self.clock.next_business_day_at(early_monday, time(10)) == local(
            TOKYO, 2026, 6, 2, 10
        )
        friday = local(TOKYO, 2026, 6, 5, 23)
        assert self.clock.next_business_day_at(friday, time(10)) == local(TOKYO, 2026, 6, 8, 10)

    def test_local_date_follows_the_calendar_zone_not_the_input_offset(self) -> None:
        # 2026-06-05 20:00 UTC is Saturday 05:00 in Tokyo: the next business day is Monday.
        t = datetime(2026, 6, 5, 20, tzinfo=UTC)
        assert self.clock.next_business_day_at(t, time(10)) == local(TOKYO, 2026, 6, 8, 10)
        assert self.clock.end_of_business_day(t) is None

    def test_any_input_offset_gives_the_same_utc_result(self) -> None:
        t = datetime(2026, 6, 1, 11, tzinfo=TOKYO)
        shifted = t.astimezone(timezone(timedelta(hours=-7, minutes=-30)))
        assert self.clock.add_business(t, 5 * HOUR) == self.clock.add_business(shifted, 5 * HOUR)
        assert self.clock.add_business(shifted, 5 * HOUR).tzinfo is UTC
        assert self.clock.is_open(shifted)
        assert self.clock.business_seconds_between(shifted, t + timedelta(hours=2)) == HOUR


class TestJapaneseHolidays:
    clock = make_clock(holiday_country="JP")  # default hours: 09:00-18:00 Monday to Friday

    @pytest.mark.parametrize(
        "day",
        [
            date(2026, 9, 21),  # Respect for the Aged Day
            date(2026, 9, 22),  # National Holiday (between two holidays)
            date(2026, 9, 23),  # Autumnal Equinox Day
            date(2026, 5, 6),  # substitute holiday for Constitution Day on a Sunday
            date(2027, 1, 11),  # Coming of Age Day
            date(2027, 3, 22),  # substitute holiday for Vernal Equinox Day on a Sunday
        ],
    )
    def test_public_holidays_are_closed(self, day: date) -> None:
        assert day.weekday() < 5
        assert not self.clock.is_business_day(day)
        assert self.clock.intervals_on(day) == ()

    def test_ordinary_weekday_is_open(self) -> None:
        assert self.clock.is_business_day(date(2026, 9, 24))

    def test_silver_week_is_skipped(self) -> None:
        # Friday 2026-09-18 17:00 + 2 business hours: 1 h Friday, then Mon-Wed are holidays.
        got = self.clock.add_business(local(TOKYO, 2026, 9, 18, 17), 2 * HOUR)
        assert got == local(TOKYO, 2026, 9, 24, 10)
        assert self.clock.business_seconds_between(
            local(TOKYO, 2026, 9, 18, 17), local(TOKYO, 2026, 9, 24, 10)
        ) == pytest.approx(2 * HOUR)

    def test_unknown_country_is_an_engine_error(self) -> None:
        with pytest.raises(EngineError, match="XX"):
            make_clock(holiday_country="XX")

    def test_subdivision_holidays(self) -> None:
        # 2026-10-12 is Columbus Day: a NY state holiday, not one in Florida.
        ny = make_clock("America/New_York", holiday_country="US", holiday_subdivision="NY")
        fl = make_clock("America/New_York", holiday_country="US", holiday_subdivision="FL")
        assert not ny.is_business_day(date(2026, 10, 12))
        assert fl.is_business_day(date(2026, 10, 12))


class TestExtraDays:
    def test_extra_holiday_closes_a_weekday(self) -> None:
        clock = make_clock(extra_holidays=frozenset({date(2026, 6, 2)}))
        assert not clock.is_business_day(date(2026, 6, 2))
        assert clock.add_business(local(TOKYO, 2026, 6, 1, 17), 2 * HOUR) == local(
            TOKYO, 2026, 6, 3, 10
        )

    def test_saturday_make_up_day_uses_monday_hours(self) -> None:
        hours = {0: (iv("08:00", "12:00"),), 1: (iv("10:00", "16:00"),)}
        clock = make_clock(weekly_hours=hours, extra_business_days=frozenset({date(2026, 6, 6)}))
        assert clock.intervals_on(date(2026, 6, 6)) == (
            (local(TOKYO, 2026, 6, 6, 8), local(TOKYO, 2026, 6, 6, 12)),
        )
        assert clock.is_business_day(date(2026, 6, 6))
        assert not clock.is_business_day(date(2026, 6, 13))

    def test_make_up_day_without_monday_hours_uses_first_open_weekday(self) -> None:
        hours = {2: (iv("10:00", "11:00"),), 4: (iv("14:00", "15:00"),)}
        clock = make_clock(weekly_hours=hours, extra_business_days=frozenset({date(2026, 6, 6)}))
        assert clock.intervals_on(date(2026, 6, 6)) == (
            (local(TOKYO, 2026, 6, 6, 10), local(TOKYO, 2026, 6, 6, 11)),
        )

    def test_extra_business_day_overrides_public_and_extra_holidays(self) -> None:
        day = date(2026, 9, 21)  # Respect for the Aged Day, a Monday
        clock = make_clock(
            holiday_country="JP",
            extra_holidays=frozenset({day}),
            extra_business_days=frozenset({day}),
        )
        assert clock.is_business_day(day)
        assert clock.end_of_business_day(local(TOKYO, 2026, 9, 21, 8)) == local(
            TOKYO, 2026, 9, 21, 18
        )


class TestAlwaysOpen:
    clock = make_clock("America/New_York", always_open=True, holiday_country="US")

    def test_business_time_is_calendar_time_across_dst_and_holidays(self) -> None:
        t = local(NEW_YORK, 2026, 3, 7, 12)
        assert self.clock.add_business(t, 24 * HOUR) == t + timedelta(hours=24)
        assert self.clock.add_business(t, 24 * HOUR) == local(NEW_YORK, 2026, 3, 8, 13)
        assert self.clock.business_seconds_between(t, local(NEW_YORK, 2026, 3, 9)) == 35 * HOUR
        assert self.clock.is_open(local(NEW_YORK, 2026, 12, 25, 3))  # Christmas too
        assert self.clock.is_business_day(date(2026, 12, 25))

    def test_a_spring_forward_day_is_23_hours(self) -> None:
        ((start, end),) = self.clock.intervals_on(date(2026, 3, 8))
        assert end - start == timedelta(hours=23)
        assert self.clock.end_of_business_day(local(NEW_YORK, 2026, 3, 8, 12)) == local(
            NEW_YORK, 2026, 3, 9
        )


class TestDstNewYork:
    """America/New_York: 2026-03-08 02:00 -> 03:00 EDT, 2026-11-01 02:00 EDT -> 01:00 EST."""

    def test_night_shift_on_spring_forward_is_five_hours(self) -> None:
        clock = make_clock("America/New_York", weekly_hours=NIGHT)
        ((start, end),) = clock.intervals_on(date(2026, 3, 8))
        assert (start, end) == (
            datetime(2026, 3, 8, 5, tzinfo=UTC),
            datetime(2026, 3, 8, 10, tzinfo=UTC),
        )
        midnight = local(NEW_YORK, 2026, 3, 8)
        assert clock.add_business(midnight, 3 * HOUR) == local(NEW_YORK, 2026, 3, 8, 4)
        assert clock.add_business(midnight, 5 * HOUR) == local(NEW_YORK, 2026, 3, 8, 6)
        # Sunday's shift lasts 5 real hours, so the sixth hour is Monday 00:00-01:00.
        assert clock.add_business(midnight, 6 * HOUR) == local(NEW_YORK, 2026, 3, 9, 1)

    def test_night_shift_on_fall_back_is_seven_hours(self) -> None:
        clock = make_clock("America/New_York", weekly_hours=NIGHT)
        ((start, end),) = clock.intervals_on(date(2026, 11, 1))
        assert end - start == timedelta(hours=7)
        midnight = local(NEW_YORK, 2026, 11, 1)
        # 2 h after midnight EDT is 01:00 EST (the second 01:00).
        assert clock.add_business(midnight, 2 * HOUR) == local(NEW_YORK, 2026, 11, 1, 1, fold=1)
        assert clock.business_seconds_between(midnight, local(NEW_YORK, 2026, 11, 2)) == 7 * HOUR

    def test_opening_in_the_gap_starts_at_the_jump(self) -> None:
        clock = make_clock("America/New_York", weekly_hours={6: (iv("02:30", "04:00"),)})
        ((start, end),) = clock.intervals_on(date(2026, 3, 8))
        assert start == local(NEW_YORK, 2026, 3, 8, 3)  # 03:00 EDT == 07:00 UTC
        assert start == datetime(2026, 3, 8, 7, tzinfo=UTC)
        assert end - start == timedelta(hours=1)

    def test_interval_wholly_in_the_gap_is_empty_that_day(self) -> None:
        clock = make_clock("America/New_York", weekly_hours={6: (iv("02:00", "02:45"),)})
        assert clock.is_business_day(date(2026, 3, 8))
        assert clock.intervals_on(date(2026, 3, 8)) == ()
        assert clock.end_of_business_day(local(NEW_YORK, 2026, 3, 8, 1)) is None
        assert len(clock.intervals_on(date(2026, 3, 15))) == 1  # a normal Sunday

    def test_boundary_in_the_repeated_hour_follows_the_wall_clock(self) -> None:
        clock = make_clock("America/New_York", weekly_hours={6: (iv("01:30", "06:00"),)})
        pieces = clock.intervals_on(date(2026, 11, 1))
        assert pieces == (
            # Open until the clock jumps back from 02:00 EDT to 01:00 EST (06:00 UTC).
            (local(NEW_YORK, 2026, 11, 1, 1, 30), local(NEW_YORK, 2026, 11, 1, 1, fold=1)),
            (local(NEW_YORK, 2026, 11, 1, 1, 30, fold=1), local(NEW_YORK, 2026, 11, 1, 6)),
        )
        assert sum((b - a for a, b in pieces), timedelta()) == timedelta(hours=5)
        assert clock.is_open(local(NEW_YORK, 2026, 11, 1, 1, 45))
        assert not clock.is_open(local(NEW_YORK, 2026, 11, 1, 1, 15, fold=1))
        assert clock.is_open(local(NEW_YORK, 2026, 11, 1, 1, 45, fold=1))

    def test_local_time_on_a_dst_day(self) -> None:
        clock = make_clock("America/New_York", weekly_hours=NIGHT)
        saturday = local(NEW_YORK, 2026, 3, 7, 12)
        # 02:30 does not exist on 2026-03-08: the first instant showing 02:30 or later is 03:00.
        assert clock.next_business_day_at(saturday, time(2, 30)) == local(NEW_YORK, 2026, 3, 8, 3)
        # 01:30 happens twice on 2026-11-01: the first occurrence (EDT) is meant.
        got = clock.next_business_day_at(local(NEW_YORK, 2026, 10, 31, 12), time(1, 30))
        assert got == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


class TestDstBerlin:
    """Europe/Berlin: 2026-03-29 02:00 -> 03:00 CEST, 2026-10-25 03:00 CEST -> 02:00 CET."""

    clock = make_clock("Europe/Berlin", weekly_hours=NIGHT)

    @pytest.mark.parametrize(
        ("day", "hours"),
        [(date(2026, 3, 28), 6), (date(2026, 3, 29), 5), (date(2026, 10, 25), 7)],
    )
    def test_night_shift_length(self, day: date, hours: int) -> None:
        ((start, end),) = self.clock.intervals_on(day)
        assert end - start == timedelta(hours=hours)
        assert start == local(BERLIN, day.year, day.month, day.day)

    def test_business_seconds_across_both_transitions(self) -> None:
        week_of_spring = self.clock.business_seconds_between(
            local(BERLIN, 2026, 3, 23), local(BERLIN, 2026, 3, 30)
        )
        assert week_of_spring == (6 * 6 + 5) * HOUR
        week_of_fall = self.clock.business_seconds_between(
            local(BERLIN, 2026, 10, 19), local(BERLIN, 2026, 10, 26)
        )
        assert week_of_fall == (6 * 6 + 7) * HOUR


class TestErrorsAndSharing:
    def test_naive_datetime_is_rejected(self) -> None:
        clock = make_clock()
        with pytest.raises(EngineError, match="naive"):
            clock.add_business(datetime(2026, 6, 1, 10), 60)
        with pytest.raises(EngineError, match="naive"):
            clock.is_open(datetime(2026, 6, 1, 10))

    @pytest.mark.parametrize("seconds", [-1.0, float("nan"), float("inf")])
    def test_bad_durations_are_rejected(self, seconds: float) -> None:
        with pytest.raises(EngineError, match="duration"):
            make_clock().add_business(local(TOKYO, 2026, 6, 1, 10), seconds)

    def test_calendar_without_hours_is_refused_by_the_model(self) -> None:
        with pytest.raises(ValidationError, match="has no business hours"):
            BusinessCalendar(calendar_id="closed", timezone="Asia/Tokyo", weekly_hours={})
        # Open days with no interval are no business hours either; always_open needs none.
        with pytest.raises(ValidationError, match="'closed' has no business hours"):
            BusinessCalendar(calendar_id="closed", timezone="UTC", weekly_hours={0: ()})
        assert BusinessCalendar(
            calendar_id="24x7", timezone="UTC", always_open=True, weekly_hours={}
        ).always_open

    def test_calendar_without_hours_fails_instead_of_looping(self) -> None:
        # The model refuses such a calendar; the clock still must not loop on one that was
        # built without validation (the scan limit is the engine's last line of defence).
        closed = BusinessCalendar.model_construct(
            calendar_id="test", timezone="Asia/Tokyo", always_open=False, weekly_hours={}
        )
        clock = CalendarClock(closed)
        with pytest.raises(EngineError, match="no business time"):
            clock.add_business(local(TOKYO, 2026, 6, 1, 10), 60)
        with pytest.raises(EngineError, match="no business day"):
            clock.next_business_day_at(local(TOKYO, 2026, 6, 1, 10), time(10))

    def test_clock_for_memoises_by_value(self) -> None:
        a = BusinessCalendar(
            calendar_id="c",
            timezone="Asia/Tokyo",
            weekly_hours={0: (iv("09:00", "10:00"),), 1: (iv("09:00", "10:00"),)},
        )
        same = BusinessCalendar(
            calendar_id="c",
            timezone="Asia/Tokyo",
            weekly_hours={1: (iv("09:00", "10:00"),), 0: (iv("09:00", "10:00"),)},
        )
        other = a.model_copy(update={"timezone": "Europe/Berlin"})
        assert clock_for(a) is clock_for(same)
        assert clock_for(a) is not clock_for(other)
        assert clock_for(other).calendar is other
