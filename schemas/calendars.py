"""Business calendar model: time zone, weekly hours, holidays (DESIGN §3).

This is only the description; the calendar arithmetic lives in the pure engine (``engine``).
iCal holiday feeds are loaded by adapters into ``extra_holidays`` (the engine does no I/O), and
``ical_feeds`` records where they came from.
"""

from __future__ import annotations

from datetime import date, time
from itertools import pairwise
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from schemas.base import Frozen
from schemas.identifiers import ShortIdentifier

Weekday = Annotated[int, Field(ge=0, le=6, description="0 = Monday ... 6 = Sunday")]


class TimeInterval(Frozen):
    """Open hours within one day, local time; ``end`` None means midnight (end of day)."""

    start: time
    end: time | None = None

    @model_validator(mode="after")
    def _ordered(self) -> TimeInterval:
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"end {self.end} must be after start {self.start}")
        return self


def _default_week() -> dict[int, tuple[TimeInterval, ...]]:
    nine_to_six = (TimeInterval(start=time(9), end=time(18)),)
    return {day: nine_to_six for day in range(5)}


class BusinessCalendar(Frozen):
    """When a client's clock runs: weekly hours in an IANA zone, minus holidays."""

    schema_version: Literal[1] = 1
    calendar_id: ShortIdentifier
    timezone: str = Field(description="IANA time zone, e.g. Asia/Tokyo")
    always_open: bool = Field(default=False, description="24x7: every instant is business time")
    weekly_hours: dict[Weekday, tuple[TimeInterval, ...]] = Field(default_factory=_default_week)
    holiday_country: str | None = Field(
        default=None, description="ISO country for `holidays`, e.g. JP"
    )
    holiday_subdivision: str | None = Field(
        default=None, description="e.g. a US state or prefecture"
    )
    extra_holidays: frozenset[date] = frozenset()
    extra_business_days: frozenset[date] = Field(
        default=frozenset(), description="Dates open despite weekday or holiday (e.g. make-up days)"
    )
    ical_feeds: tuple[str, ...] = Field(default=(), description="Provenance of loaded iCal feeds")

    @model_validator(mode="after")
    def _has_business_time(self) -> BusinessCalendar:
        # A calendar whose clock never runs makes every deadline uncomputable (the engine would
        # scan ten years for an open hour): refuse it where it enters, naming the calendar.
        if not self.always_open and self.weekly_minutes() == 0:
            raise ValueError(
                f"calendar {self.calendar_id!r} has no business hours "
                "(give weekly_hours at least one interval, or set always_open)"
            )
        return self

    def weekly_minutes(self) -> float:
        """Business minutes in an ordinary week (no holidays, no DST change); 24x7: 10,080."""
        if self.always_open:
            return 7 * 24 * 60.0
        total = 0.0
        for intervals in self.weekly_hours.values():
            for interval in intervals:
                start = (
                    interval.start.hour * 60 + interval.start.minute + interval.start.second / 60
                )
                end = (
                    24 * 60.0
                    if interval.end is None
                    else interval.end.hour * 60 + interval.end.minute + interval.end.second / 60
                )
                total += end - start
        return total

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("weekly_hours")
    @classmethod
    def _no_overlap(
        cls, value: dict[int, tuple[TimeInterval, ...]]
    ) -> dict[int, tuple[TimeInterval, ...]]:
        for day, intervals in value.items():
            ordered = sorted(intervals, key=lambda i: i.start)
            for left, right in pairwise(ordered):
                if left.end is None or left.end > right.start:
                    raise ValueError(f"weekday {day}: intervals {left} and {right} overlap")
        return value
