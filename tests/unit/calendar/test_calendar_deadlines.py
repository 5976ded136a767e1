"""Deadline rules on business calendars: engine.deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.calendar import CalendarClock
from engine.deadlines import deadline_for, elapsed, sla_budget, warning_instants
from schemas.calendars import BusinessCalendar, TimeInterval
from schemas.policies import (
    BusinessDuration,
    CalendarDuration,
    SameDayOrNextMorning,
    SlaPolicy,
)
from shinrai.errors import EngineError

pytestmark = pytest.mark.unit

TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")
HOUR = 3600.0

JAPAN = CalendarClock(
    BusinessCalendar(calendar_id="jp", timezone="Asia/Tokyo", holiday_country="JP")
)
DEFAULT = SlaPolicy.default()


def jst(*args: int) -> datetime:
    return datetime(*args, tzinfo=TOKYO)  # type: ignore[misc]


class TestDefaultSameDayRule:
    """SlaPolicy.default(): before 15:00 on a business day -> end of day, else 10:00 next day."""

    rule = DEFAULT.first_response

    def test_default_policy_is_the_documented_rule(self) -> None:
        assert self.rule == SameDayOrNextMorning(cutoff=time(15), next_day_by=time(10))

    @pytest.mark.parametrize(
        ("opened", "due"),
        [
            (jst(2026, 6, 1, 14, 59), jst(2026, 6, 1, 18)),  # Monday, before cutoff
            (jst(2026, 6, 1, 15, 0), jst(2026, 6, 2, 10)),  # cutoff itself is "after"
            (jst(2026, 6, 1, 19), jst(2026, 6, 2, 10)),  # after closing
            (jst(2026, 6, 1, 7), jst(2026, 6, 1, 18)),  # before opening: still the same day
            (jst(2026, 6, 5, 16), jst(2026, 6, 8, 10)),  # Friday afternoon -> Monday
            (jst(2026, 6, 6, 11), jst(2026, 6, 8, 10)),  # Saturday morning -> Monday
        ],
    )
    def test_deadlines(self, opened: datetime, due: datetime) -> None:
        assert deadline_for(self.rule, opened, JAPAN) == due
        assert deadline_for(self.rule, opened, JAPAN).tzinfo is UTC

    def test_friday_before_coming_of_age_day(self) -> None:
        # 2027-01-11 (Mon) is Coming of Age Day: due Tuesday 10:00 JST.
        opened = jst(2027, 1, 8, 16)
        deadline = deadline_for(self.rule, opened, JAPAN)
        assert deadline == jst(2027, 1, 12, 10)
        answer = jst(2027, 1, 12, 9, 50)
        assert answer < deadline  # in time
        business, calendar = elapsed(opened, answer, JAPAN)
        assert business == 2 * HOUR + 50 * 60  # Fri 16-18, Tue 09:00-09:50
        assert calendar == (answer - opened).total_seconds()

    def test_friday_before_silver_week(self) -> None:
        # 2026-09-21/22/23 are Respect for the Aged Day, a National Holiday and the Autumnal
        # Equinox: a Friday 16:00 email is due Thursday 10:00, not Tuesday.
        assert deadline_for(self.rule, jst(2026, 9, 18, 16), JAPAN) == jst(2026, 9, 24, 10)

    def test_cutoff_before_but_day_already_closed(self) -> None:
        short = CalendarClock(
            BusinessCalendar(
                calendar_id="mornings",
                timezone="Asia/Tokyo",
                weekly_hours={d: (TimeInterval(start=time(9), end=time(12)),) for d in range(5)},
            )
        )
        assert deadline_for(self.rule, jst(2026, 6, 1, 13), short) == jst(2026, 6, 2, 10)
        assert deadline_for(self.rule, jst(2026, 6, 1, 11), short) == jst(2026, 6, 1, 12)

    def test_custom_cutoff_and_morning(self) -> None:
        rule = SameDayOrNextMorning(cutoff=time(12), next_day_by=time(9, 30))
        assert deadline_for(rule, jst(2026, 6, 1, 12, 30), JAPAN) == jst(2026, 6, 2, 9, 30)


class TestDurations:
    def test_business_duration_skips_nights_and_weekends(self) -> None:
        rule = BusinessDuration(minutes=4 * 60)
        assert deadline_for(rule, jst(2026, 6, 5, 16), JAPAN) == jst(2026, 6, 8, 11)
        assert deadline_for(rule, jst(2026, 6, 5, 20), JAPAN) == jst(2026, 6, 8, 13)

    def test_calendar_duration_is_wall_clock_exact_over_dst(self) -> None:
        rule = CalendarDuration(minutes=24 * 60)
        ny = CalendarClock(BusinessCalendar(calendar_id="ny", timezone="America/New_York"))
        opened = datetime(2026, 3, 7, 12, tzinfo=NEW_YORK)
        due = deadline_for(rule, opened, ny)
        assert due == datetime(2026, 3, 8, 13, tzinfo=NEW_YORK)  # 24 real hours, 23 on the dial
        assert due.tzinfo is UTC


class TestBudgetsAndWarnings:
    def test_budget_of_the_holiday_weekend(self) -> None:
        opened = jst(2027, 1, 8, 16)
        deadline = jst(2027, 1, 12, 10)
        business, calendar = sla_budget(DEFAULT.first_response, opened, deadline, JAPAN)
        assert business == 3 * HOUR  # Fri 16-18 and Tue 09-10
        assert calendar == (3 * 24 + 18) * HOUR

    def test_default_warnings_are_in_business_time(self) -> None:
        opened = jst(2027, 1, 8, 16)
        deadline = deadline_for(DEFAULT.first_response, opened, JAPAN)
        got = warning_instants(
            DEFAULT.first_response, opened, deadline, DEFAULT.warning_fractions, JAPAN
        )
        # 3 business hours: 50% = 1.5 h -> Fri 17:30; 75% = 2.25 h -> Tue 09:15; 90% -> 09:42.
        assert got == [
            (0.5, jst(2027, 1, 8, 17, 30)),
            (0.75, jst(2027, 1, 12, 9, 15)),
            (0.9, jst(2027, 1, 12, 9, 42)),
        ]
        assert all(at.tzinfo is UTC for _, at in got)

    def test_calendar_rule_warnings_are_in_calendar_time(self) -> None:
        rule = CalendarDuration(minutes=100)
        opened = jst(2026, 6, 6, 23)  # Saturday night: closed, irrelevant for calendar rules
        deadline = deadline_for(rule, opened, JAPAN)
        got = warning_instants(rule, opened, deadline, (0.9, 0.5), JAPAN)
        assert got == [(0.5, opened + timedelta(minutes=50)), (0.9, opened + timedelta(minutes=90))]

    def test_zero_business_budget_falls_back_to_calendar_time(self) -> None:
        late_opening = CalendarClock(
            BusinessCalendar(
                calendar_id="late",
                timezone="Asia/Tokyo",
                weekly_hours={d: (TimeInterval(start=time(11), end=time(18)),) for d in range(5)},
            )
        )
        opened = jst(2026, 6, 6, 12)  # Saturday; due Monday 10:00, an hour before opening
        deadline = deadline_for(DEFAULT.first_response, opened, late_opening)
        assert deadline == jst(2026, 6, 8, 10)
        assert sla_budget(DEFAULT.first_response, opened, deadline, late_opening)[0] == 0.0
        got = warning_instants(DEFAULT.first_response, opened, deadline, (0.5,), late_opening)
        assert got == [(0.5, jst(2026, 6, 7, 11))]  # half of 46 calendar hours

    def test_warnings_are_strictly_before_the_deadline(self) -> None:
        opened = jst(2026, 6, 1, 9)
        deadline = jst(2026, 6, 1, 9, 0, 0, 2)  # a two-microsecond SLA
        got = warning_instants(BusinessDuration(minutes=1), opened, deadline, (0.5, 0.99), JAPAN)
        assert [f for f, _ in got] == [0.5]
        assert all(at < deadline for _, at in got)

    def test_calendar_seconds_are_real_seconds_across_dst(self) -> None:
        ny = CalendarClock(BusinessCalendar(calendar_id="ny", timezone="America/New_York"))
        opened = datetime(2026, 3, 7, 12, tzinfo=NEW_YORK)
        noon_after_spring_forward = datetime(2026, 3, 8, 12, tzinfo=NEW_YORK)
        assert elapsed(opened, noon_after_spring_forward, ny)[1] == 23 * HOUR
        rule = CalendarDuration(minutes=24 * 60)
        deadline = deadline_for(rule, opened, ny)
        assert sla_budget(rule, opened, deadline, ny)[1] == 24 * HOUR
        ((_, half),) = warning_instants(rule, opened, deadline, (0.5,), ny)
        assert half == datetime(2026, 3, 8, 5, tzinfo=UTC)  # midnight EST, 12 real hours on

    @pytest.mark.parametrize(
        "rule", [CalendarDuration(minutes=60), BusinessDuration(minutes=60), SameDayOrNextMorning()]
    )
    def test_naive_instants_are_rejected(
        self, rule: CalendarDuration | BusinessDuration | SameDayOrNextMorning
    ) -> None:
        naive = datetime(2026, 6, 1, 10)
        with pytest.raises(EngineError, match="naive"):
            deadline_for(rule, naive, JAPAN)
        with pytest.raises(EngineError, match="naive"):
            elapsed(naive, jst(2026, 6, 1, 11), JAPAN)

    def test_elapsed_is_zero_backwards(self) -> None:
        assert elapsed(jst(2026, 6, 2, 10), jst(2026, 6, 1, 10), JAPAN) == (0.0, 0.0)

    def test_overage_of_a_late_answer(self) -> None:
        # Due Monday 18:00, answered Tuesday 10:30: 1.5 business hours and 16.5 hours late.
        business, calendar = elapsed(jst(2026, 6, 1, 18), jst(2026, 6, 2, 10, 30), JAPAN)
        assert (business, calendar) == (1.5 * HOUR, 16.5 * HOUR)
